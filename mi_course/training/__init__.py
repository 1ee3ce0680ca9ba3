"""Training recipes for the zoo models. Each recipe is seeded and runs on CPU.

``mi-course train NAME`` runs a recipe and writes the checkpoint and card; a test runs a
short smoke version of every recipe.
"""

RECIPES = {
    "attn-only-2l": "mi_course.training.induction_recipe",
    "ioi-lm": "mi_course.training.ioi_recipe",
    "modadd-p113": "mi_course.training.modadd_recipe",
    "kb-lm": "mi_course.training.kb_recipe",
    "text-lm": "mi_course.training.textlm_recipe",
    "text-lm-v2": "mi_course.training.textlm2_recipe",
    # sparse autoencoders (written to zoo/saes/, loaded with zoo.load_sae)
    "text-lm-L1-resid-topk": "mi_course.training.sae_recipe",
    "kb-lm-L3-subject-topk": "mi_course.training.kb_sae_recipe",
    "text-lm-L1-transcoder-topk": "mi_course.training.transcoder_recipe",
}
