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
}
