"""Recipe for a transcoder in place of one MLP of ``text-lm`` (Dunefsky et al. 2024), with resume.

A TopK transcoder (k = 32, 1,024 latents) reads ``blocks.1.mlp.hook_in`` (the residual stream after
``ln2`` of block 1) and is trained to reproduce ``blocks.1.hook_mlp_out``, on activations streamed
from random windows of the stdlib corpus's train split (first position left out); Adam lr 1e-3,
batches of 1,024 tokens, AuxK on dead latents. Every ``checkpoint_every`` steps the transcoder,
the optimiser's state and the step are written to ``<folder>/resume.pt``; a later call with
``resume=True`` goes on from there (the LR schedule continues; the data stream restarts at a
different offset, and the dead-latent counters restart).

It belongs to the CURRENT ``text-lm``; retrain on ``text-lm-v2`` (``model_name="text-lm-v2"``) for
weeks 13/14. Measured on held-out windows: L0, explained variance of the MLP output, dead latents,
CE loss recovered with the transcoder spliced in place of the MLP (against zero-ablating the MLP),
beside a TopK SAE on the MLP output with the same k (equal L0) trained the same way.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

NAME = "text-lm-L1-transcoder-topk"
MODEL = "text-lm"
LAYER = 1
D_SAE = 1024
K = 32
STEPS = 600


def train_and_save(steps: int | None = None, seed: int = 0, folder=None, progress: bool = True,
                   model_name: str = MODEL, resume: bool = True, checkpoint_every: int = 100,
                   with_sae_baseline: bool = True, name: str = NAME, layer: int = LAYER, d_sae: int = D_SAE,
                   k: int = K):
    """Train (resuming from ``<folder>/resume.pt`` if there), measure and write the transcoder and its card.

    The defaults make the demo transcoder of ``text-lm``; ``model_name``, ``name``, ``layer``, ``d_sae``
    and ``k`` make the same recipe for another text model (e.g. ``text-lm-v2``) or MLP.
    """
    from mi_course import zoo
    from mi_course.methods import sae as S
    from mi_course.methods import sae_metrics as M
    from mi_course.methods import transcoders as T
    from mi_course.training.sae_recipe import _corpus, windows
    from mi_course.zoo.saes import SAES_DIR, SAECard, save_sae

    steps = steps or STEPS
    folder = Path(folder) if folder else SAES_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / "resume.pt"
    torch.manual_seed(seed)
    model = zoo.load(model_name)
    tc = T.make_transcoder(model, layer, d_sae, "topk", k, seed)
    start, opt_state, history = 0, None, []
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        tc.load_state_dict(state["transcoder"])
        start, opt_state, history = state["step"], state["optimizer"], state["history"]
    n_windows = max(steps * 1024 // (model.cfg.n_ctx - 1) + 64, 64)
    train_w = windows(model_name, "train", n_windows, seed + start)
    held = windows(model_name, "heldout", 32, seed)

    def save_checkpoint(step, sae, optimizer_state, cfg):
        torch.save({"transcoder": sae.state_dict(), "optimizer": optimizer_state, "step": step,
                    "history": list(cfg.history)}, ckpt)

    t0 = time.time()
    buf = S.ActivationBuffer(model, tc.hook_name, train_w, output_hook_name=tc.output_hook_name,
                             buffer_tokens=16_384, model_batch=16, seed=seed + start)
    cfg = S.SAETrainConfig(steps=steps, batch_size=1024, lr=1e-3, dead_after_tokens=200_000, seed=seed,
                           start_step=start, optimizer_state=opt_state, checkpoint_every=checkpoint_every,
                           on_checkpoint=save_checkpoint, history=history)
    if start == 0:
        S.set_input_scale(tc, buf)
    S.train_sae(tc, buf, cfg, progress=progress)
    seconds = time.time() - t0
    ours = T.evaluate(model, tc, held)
    figures = {key: {"value": round(float(ours[key]), 4), "description": d} for key, d in (
        ("l0", "mean active latents per held-out token"),
        ("explained_variance", "1 - FVU of the MLP output on held-out tokens"),
        ("dead", "latents that never fire on the held-out tokens"),
        ("ce_loss_recovered", "(L_zero_MLP - L_spliced) / (L_zero_MLP - L_clean), 32 held-out windows"),
        ("clean", "held-out loss (nats/token)"), ("spliced", "held-out loss, transcoder in place of the MLP"),
        ("zero_ablated", "held-out loss, MLP output zeroed"))}
    if with_sae_baseline:
        sae = S.SparseAutoencoder(model.cfg.d_model, d_sae, "topk", k=k, seed=seed)
        sae.hook_name = tc.output_hook_name
        buf2 = S.ActivationBuffer(model, sae.hook_name, train_w, buffer_tokens=16_384, model_batch=16, seed=seed)
        S.train_sae(sae, buf2, steps=steps, batch_size=1024, lr=1e-3, dead_after_tokens=200_000, progress=progress,
                    seed=seed)
        spl = M.spliced_losses(model, sae, held, sae.hook_name)
        _, cache = model.run_with_cache(held, names_filter=lambda n: n == sae.hook_name)
        rec = M.reconstruction_metrics(sae, cache[sae.hook_name][:, 1:].reshape(-1, sae.d_in))
        for key in ("l0", "explained_variance", "dead"):
            figures[key]["sae_on_mlp_out"] = round(float(rec[key]), 4)
        figures["ce_loss_recovered"]["sae_on_mlp_out"] = round(float(spl["ce_loss_recovered"]), 4)
    card = SAECard(
        name=name,
        summary=f"TopK transcoder (k={k}, {d_sae} latents) in place of MLP {layer} of {model_name}."
                + (" DEMO: belongs to the current text-lm; retrain on text-lm v2." if model_name == MODEL else ""),
        config=tc.config(),
        training={"data": f"{tc.hook_name} -> {tc.output_hook_name} of {model_name}, random train windows of its "
                          f"{_corpus(model_name)} corpus (first position left out); {steps * 1024 / 1e6:.2f}M tokens",
                  "recipe": f"Adam lr 1e-3 (warm-up 50, linear decay over the last 20%), batch 1,024 tokens, {steps} "
                            "steps, AuxK on latents dead for 200k tokens; resumable every "
                            f"{checkpoint_every} steps", "seed": seed, "steps": steps,
                  "command": f"mi-course train {name}", "cpu_time": f"{seconds:.0f} s (this run; shared CPU)",
                  "retrain_with": "text-lm-v2"},
        figures=figures,
        extra={"history": cfg.history[-5:], "model_sha256": zoo.card(model_name).sha256},
        paper_figures={"Dunefsky et al. 2024": "transcoders on GPT-2 small / Pythia: on par with SAEs on the MLP "
                                               "output in sparsity (L0) and faithfulness (CE loss), and as interpretable"},
        model_name=model_name, hook_name=tc.hook_name, kind="transcoder", output_hook_name=tc.output_hook_name,
    )
    out = save_sae(tc, card, folder)
    ckpt.unlink(missing_ok=True)
    return out
