"""Training recipes for the zoo models. Each recipe is seeded and runs on CPU.

``mi-course train NAME`` runs a recipe and writes the checkpoint and card; a test runs a
short smoke version of every recipe. A recipe is a module with ``train_and_save``, or a
``(module, keyword arguments)`` pair where one recipe makes several zoo entries (the SAEs and
transcoders of ``text-lm-v2`` use the ``text-lm`` recipes with another model, hook or layer).
"""

_SAE = "mi_course.training.sae_recipe"
_TRANSCODER = "mi_course.training.transcoder_recipe"

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
    # block 3 on text-lm-v2 (d_model 256: 2,048 latents, 8x, k = 32 as on text-lm; 1.2M tokens, 3x text-lm's)
    "text-lm-v2-L1-resid-topk": (_SAE, dict(model_name="text-lm-v2", name="text-lm-v2-L1-resid-topk",
                                            hook="blocks.1.hook_resid_post", d_sae=2048, k=32, steps=1200)),
    "text-lm-v2-L0-transcoder-topk": (_TRANSCODER, dict(model_name="text-lm-v2", name="text-lm-v2-L0-transcoder-topk",
                                                        layer=0, d_sae=2048, k=32, steps=1200)),
    "text-lm-v2-L1-transcoder-topk": (_TRANSCODER, dict(model_name="text-lm-v2", name="text-lm-v2-L1-transcoder-topk",
                                                        layer=1, d_sae=2048, k=32, steps=1200)),
}


def recipe(name: str):
    """``(module, keyword arguments)`` of zoo entry ``name``'s recipe (``KeyError`` if there is none)."""
    import importlib

    entry = RECIPES[name]
    module, kwargs = (entry, {}) if isinstance(entry, str) else entry
    return importlib.import_module(module), dict(kwargs)
