"""Recipe for ``kb-lm-L3-subject-topk``: a small TopK SAE on ``kb-lm``'s person representation, for SHIFT.

Data: the residual stream entering block 3 (of 6) at the last token of every person's name, read
after each of the KB's 21 name contexts (the bare name ``<|endoftext|> Kalo Durmer`` and the 20
texts templates put before a subject: ``"Records show that "``, ...): 21 x 300 = 6,300 activations
(:func:`mi_course.methods.shift.subject_context_acts`). No labels are used. SAE: TopK, k = 4,
128 latents, Adam lr 1e-3, 800 batches of 512, AuxK on latents dead for 20k inputs; about a
minute on one CPU core.

Measured (on the bare names, the activation the job-group probe reads): reconstruction, and
SHIFT (:func:`mi_course.methods.shift.shift_over_splits`, 5 random people splits) with the
probe trained on the skewed population and on the fully confounded (agreeing) people, beside
ablating as many random latents.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from mi_course.zoo import hooks as hk

NAME = "kb-lm-L3-subject-topk"
MODEL = "kb-lm"
HOOK = hk.resid_pre(3)
D_SAE = 128
K = 4
SEEDS = (0, 1, 2, 3, 4)


def train(steps: int = 800, seed: int = 0, progress: bool = True):
    """``(sae, contexts [21, 300, d_model], seconds)``: the SAE trained on kb-lm's name activations."""
    from mi_course import zoo
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import sae as S
    from mi_course.methods import shift as SH

    torch.manual_seed(seed)
    model, kb = zoo.load(MODEL), load_kb()
    t0 = time.time()
    ctx = SH.subject_context_acts(model, kb, kb.subjects, HOOK)
    sae = S.SparseAutoencoder(model.cfg.d_model, D_SAE, "topk", k=K, seed=seed)
    sae.hook_name = HOOK
    history = S.train_sae(sae, S.TensorSource(ctx.reshape(-1, ctx.shape[-1]), seed=seed), steps=steps,
                          batch_size=512, lr=1e-3, dead_after_tokens=20_000, progress=progress, seed=seed)
    sae.history = history
    return sae, ctx, time.time() - t0


@torch.no_grad()
def measure(sae, ctx: torch.Tensor | None = None, seeds=SEEDS) -> dict:
    """Reconstruction on all contexts and on the bare names, and SHIFT's numbers (averaged over splits)."""
    from mi_course import zoo
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import sae_metrics as M
    from mi_course.methods import shift as SH

    kb = load_kb()
    if ctx is None:
        ctx = SH.subject_context_acts(zoo.load(MODEL), kb, kb.subjects, HOOK)
    bare = ctx[0]
    rec_all = M.reconstruction_metrics(sae, ctx.reshape(-1, ctx.shape[-1]))
    rec_bare = M.reconstruction_metrics(sae, bare)
    out = {"l0": rec_all["l0"], "explained_variance": rec_all["explained_variance"],
           "explained_variance_bare": rec_bare["explained_variance"], "dead": rec_all["dead"]}
    for train_on, tag in (("train", "skewed"), ("train_agree", "agree")):
        r = SH.shift_over_splits(sae, bare, kb, seeds=seeds, train_on=train_on)
        for stage in ("before", "after", "retrained", "random_after", "random_retrained"):
            for m in ("accuracy", "accuracy_disagree", "bias"):
                out[f"{tag}_{stage}_{m}"] = r[stage][m]
        out[f"{tag}_n_ablated"] = r["n_spurious"]
        out[f"{tag}_gender_probe_before"] = r["gender_probe"]["before"]
        out[f"{tag}_gender_probe_after"] = r["gender_probe"]["after"]
    return out


def describe(key: str) -> str:
    fixed = {"l0": "mean active latents per name activation (all 21 contexts)",
             "explained_variance": "1 - FVU over all 21 x 300 name activations",
             "explained_variance_bare": "1 - FVU on the 300 bare names (what the probe reads)",
             "dead": "latents that never fire on the 6,300 name activations"}
    if key in fixed:
        return fixed[key]
    tag, rest = key.split("_", 1)
    pop = ("probe for job group trained on the skewed training people" if tag == "skewed" else
           "probe for job group trained on the training people whose job group matches their gender")
    if rest == "n_ablated":
        return f"{pop}: latents judged gender (purity) and ablated, mean over 5 splits"
    if rest.startswith("gender_probe"):
        return f"{pop}: a fresh gender probe's held-out accuracy {rest.rsplit('_', 1)[1]} ablation"
    stage, metric = rest.rsplit("_accuracy", 1) if "_accuracy" in rest else rest.rsplit("_bias", 1)
    metric = ("job-group accuracy" + (" on held-out people whose job group and gender disagree" if metric == "_disagree"
                                      else " on all held-out people") if "_accuracy" in rest else
              "bias = accuracy(agree) - accuracy(disagree), held-out people")
    return f"{pop}; {stage.replace('_', ' ')}: {metric}; mean over 5 splits"


def train_and_save(steps: int | None = None, seed: int = 0, folder=None, progress: bool = True):
    """Train, measure and write the SAE and its card."""
    from mi_course import zoo
    from mi_course.zoo.saes import SAECard, save_sae

    steps = steps or 800
    sae, ctx, seconds = train(steps, seed, progress)
    figs = measure(sae, ctx)
    card = SAECard(
        name=NAME,
        summary=f"TopK SAE (k={K}, {D_SAE} latents) on kb-lm's residual stream entering block 3, at the last token "
                "of a person's name: the person representation that week 07's probes read. For SHIFT (week 13).",
        config=sae.config(),
        training={
            "data": f"{HOOK} of kb-lm at the last name token of all 300 people after each of 21 name contexts "
                    "(bare name and the 20 prefixes of the KB's templates): 6,300 activations, no labels",
            "recipe": f"Adam lr 1e-3 (warm-up 50, linear decay over the last 20%), batch 512, {steps} steps, AuxK on "
                      "latents dead for 20k inputs; inputs scaled to mean norm sqrt(d_in)",
            "seed": seed, "steps": steps, "command": f"mi-course train {NAME}",
            "cpu_time": f"{seconds:.0f} s on this machine's CPU (shared)",
        },
        figures={k: {"value": round(float(v), 4), "description": describe(k)} for k, v in figs.items()},
        extra={"history": sae.history[-3:], "model_sha256": zoo.card(MODEL).sha256, "shift_seeds": list(SEEDS)},
        paper_figures={
            "Marks et al. 2024 (Sparse Feature Circuits), SHIFT on Bias in Bios": "profession accuracy on the "
            "balanced set 61.9% -> 88.5% after ablating the gender features judged spurious, 93.1% with retraining; "
            "gender accuracy 87.4% -> 54.0%",
        },
        model_name=MODEL, hook_name=HOOK, kind="sae",
    )
    sae.eval()
    return save_sae(sae, card, Path(folder) if folder else None)
