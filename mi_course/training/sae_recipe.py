"""Recipe for the zoo's demo SAE: a TopK sparse autoencoder on ``text-lm``'s middle residual stream.

It belongs to the CURRENT ``text-lm`` (d_model 128, trained on the standard library only, no
induction heads): when ``text-lm`` is retrained (``text-lm-v2``), retrain this SAE on it with
``train_and_save(model_name="text-lm-v2")``.

Data: activations at ``blocks.1.hook_resid_post`` (after the second of four blocks) streamed from
the model on random windows of the stdlib corpus's train split (the first ``<|endoftext|>``
position left out), through a shuffled buffer. SAE: TopK (k=32), 1,024 latents (8x d_model),
AuxK on dead latents, Adam lr 1e-3, 400 batches of 1,024 tokens (about 8 minutes on a busy CPU core). Measured on held-out windows beside a
random-decoder baseline (same architecture, decoder fixed at random directions, encoder trained).
After retraining, rebuild the dashboard statistics shipped beside it (and week 12's measured
autointerp figures) with ``python benchmarks/sae_dashboards.py --write``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch


NAME = "text-lm-L1-resid-topk"
MODEL = "text-lm"
HOOK = "blocks.1.hook_resid_post"
D_SAE = 1024
K = 32


def windows(model_name: str, split: str, n: int, seed: int):
    """``[n, n_ctx]`` token windows of the model's own corpus (random for train, fixed for held-out)."""
    from mi_course.zoo import text

    return text.windows(model_name, split, n, seed)


def _corpus(model_name: str) -> str:
    from mi_course.zoo import text

    return {"python": "stdlib + packages", "stdlib": "stdlib"}[text.corpus_of(model_name)]


@torch.no_grad()
def evaluate(model, sae, tokens: torch.Tensor) -> dict:
    """L0, explained variance, MSE, shrinkage, dead/dense latents and CE loss recovered / KL on ``tokens``."""
    from mi_course.methods import sae_metrics as M

    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == sae.hook_name)
    x = cache[sae.hook_name][:, 1:].reshape(-1, sae.d_in)
    rec = M.reconstruction_metrics(sae, x, dense=0.1)
    spl = M.spliced_losses(model, sae, tokens[:32], sae.hook_name)
    return {**rec, **{k: spl[k] for k in ("clean", "spliced", "zero_ablated", "ce_loss_recovered", "kl_spliced",
                                            "kl_score")}, "eval_tokens": int(x.shape[0])}


def train_and_save(steps: int | None = None, seed: int = 0, folder=None, progress: bool = True,
                   model_name: str = MODEL, baseline_steps: int | None = None, name: str = NAME,
                   hook: str = HOOK, d_sae: int = D_SAE, k: int = K):
    """Train, measure (beside the random-decoder baseline) and write the SAE and its card.

    The defaults make the zoo's demo SAE; ``model_name``, ``name``, ``hook``, ``d_sae`` and ``k``
    make the same recipe for another text model (e.g. ``text-lm-v2``) or activation.
    """
    from mi_course import zoo
    from mi_course.methods import sae as S
    from mi_course.zoo.saes import SAECard, save_sae

    steps = steps or 400
    baseline_steps = baseline_steps or max(steps * 3 // 8, 1)
    torch.manual_seed(seed)
    model = zoo.load(model_name)
    train_w = windows(model_name, "train", max(steps * 1024 // (model.cfg.n_ctx - 1) + 64, 64), seed)
    held = windows(model_name, "heldout", 128, seed)
    t0 = time.time()
    sae = S.SparseAutoencoder(model.cfg.d_model, d_sae, "topk", k=k, seed=seed)
    sae.hook_name = hook
    buf = S.ActivationBuffer(model, hook, train_w, buffer_tokens=16_384, model_batch=16, seed=seed)
    history = S.train_sae(sae, buf, steps=steps, batch_size=1024, lr=1e-3, dead_after_tokens=200_000,
                          progress=progress, seed=seed)
    seconds = time.time() - t0
    base = S.random_decoder_sae(sae, seed=seed + 1)
    base.hook_name = hook
    buf_b = S.ActivationBuffer(model, hook, train_w, buffer_tokens=16_384, model_batch=16, seed=seed + 1)
    S.train_sae(base, buf_b, steps=baseline_steps, batch_size=1024, lr=1e-3, dead_after_tokens=200_000,
                progress=progress, seed=seed, freeze_decoder=True)
    ours, rand = evaluate(model, sae, held), evaluate(model, base, held)
    figures = {}
    desc = {"l0": "mean active latents per held-out token", "explained_variance": "1 - FVU on held-out tokens",
            "mse": "mean squared error per token", "shrinkage": "mean ||x_hat|| / ||x||",
            "dead": f"latents that never fire on the {ours['eval_tokens']} held-out tokens",
            "dense": "latents firing on > 10% of held-out tokens",
            "ce_loss_recovered": "(L_zero - L_spliced) / (L_zero - L_clean), 32 held-out windows",
            "kl_spliced": "mean KL(clean || SAE spliced in) per token, nats",
            "kl_score": "1 - KL_spliced / KL_zero-ablated",
            "clean": "model's held-out loss (nats/token)", "spliced": "held-out loss with the SAE spliced in",
            "zero_ablated": "held-out loss with the activation zero-ablated"}
    for key, text in desc.items():
        figures[key] = {"value": round(float(ours[key]), 4), "random_decoder_baseline": round(float(rand[key]), 4),
                        "description": text}
    card = SAECard(
        name=name,
        summary=f"TopK SAE (k={k}, {d_sae} latents) on {model_name}'s {hook}."
                + (f" DEMO: belongs to the current {model_name} (stdlib-only, no induction heads); retrain it on "
                   "text-lm v2 when that replaces text-lm." if name == NAME else ""),
        config=sae.config(),
        training={
            "data": f"activations at {hook} of {model_name} on random train windows of its {_corpus(model_name)} corpus "
                    f"(first position left out), shuffled buffer of 16,384 tokens; {steps * 1024 / 1e6:.2f}M tokens",
            "recipe": f"Adam lr 1e-3 (warm-up 50, linear decay over the last 20%), batch 1,024 tokens, {steps} steps, "
                      f"AuxK (k_aux = d_in/2, coefficient 1/32) on latents dead for 200k tokens; inputs scaled to "
                      f"mean norm sqrt(d_in). Random-decoder baseline: decoder fixed at random directions, encoder "
                      f"trained {baseline_steps} steps",
            "seed": seed, "steps": steps,
            "command": f"mi-course train {name}",
            "cpu_time": f"{seconds:.0f} s on this machine's CPU (shared)",
            "retrain_with": "text-lm-v2",
        },
        figures=figures,
        extra={"history": history[-5:], "model_sha256": zoo.card(model_name).sha256},
        paper_figures={
            "Bricken et al. 2023 (Towards Monosemanticity)": "1-layer model, 512-neuron MLP, 4,096-latent run A/1 had "
                                                             "168 dead latents; an open replication on gelu-1l reached "
                                                             "~94% loss recovered after 2B tokens",
            "Gao et al. 2024 (TopK)": "TopK SAEs on GPT-4 / GPT-2 small; AuxK keeps dead latents low",
            "Korznikov et al. 2026": "random-decoder baselines match trained SAEs on several downstream metrics: "
                                     "compare every figure with random_decoder_baseline",
        },
        model_name=model_name, hook_name=hook, kind="sae",
    )
    sae.eval()
    return save_sae(sae, card, Path(folder) if folder else None)
