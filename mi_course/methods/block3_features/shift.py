"""SHIFT: removing a classifier's reliance on a spurious cue by ablating SAE latents (Marks et al. 2024, sec. 4).

Marks et al. train a linear classifier for profession (professor vs nurse) on Bias in Bios data
where profession and gender are perfectly correlated; the classifier picks up gender. They rank
SAE latents by their attribution to the classifier's output, a human judges which ones are about
gender (task-irrelevant), ablates those, and the classifier's accuracy on held-out data where
gender and profession *disagree* rises (the paper: profession accuracy 61.9% -> 88.5%, gender
accuracy 87.4% -> 54.0% on the balanced set, with retraining after ablation 93.1%).

Here the same on ``kb-lm`` with ground truth: the knowledge base plants an 80/20 skew between a
person's gender and their job group (:attr:`KnowledgeBase.job_groups`). The classifier is a linear
probe for the job group read at the last token of the bare name (``<|endoftext|> Kalo Durmer``);
the SAE reads the same activation. "Judging" a latent is exact: its correlation with the KB's
gender against its correlation with the job group (on the training people only).

>>> acts = subject_acts(model, kb, kb.subjects, hooks.resid_pre(3))
>>> split = confounded_split(kb)                       # people: train (skewed) / test, agree / disagree
>>> probe = JobProbe.fit(acts[split.train], y_job[split.train])
>>> report(probe, acts[split.test], y_job[split.test], y_gender[split.test])   # accuracy on disagree people
>>> out = shift(sae, acts, kb, split, n_latents=8)     # before / after / random-latent baseline

Shapes: activations ``[n_people, d_model]``, latents ``[n_people, d_sae]``, labels ``[n_people]``
(0/1: ``probing.attribute_labels`` order, "female" = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from mi_course.errors import InputError

__all__ = ["name_prefixes", "subject_acts", "subject_context_acts", "document_activations", "ConfoundedSplit", "confounded_split", "JobProbe", "report",
           "latent_attributions", "latent_correlations", "purity", "judge_latents", "ablate_latents", "shift", "shift_over_splits"]


# ----------------------------------------------------------------------------------- activations
def name_prefixes(kb) -> list[str]:
    """``""`` (the bare name) and every distinct text the KB's templates put before a subject
    (``"Records show that "``, ...): contexts in which the last subject token sees different words."""
    out = set()
    for r in kb.all_relations:
        for t in kb.templates(r):
            if not t.startswith("{}"):
                out.add(t.split("{}")[0])
    return [""] + sorted(out)


@torch.no_grad()
def subject_acts(model, kb, subjects: Sequence[str], hook_name: str, prefix: str = "") -> torch.Tensor:
    """``[n, d]``: the activation at ``hook_name`` at the last token of each name in ``subjects``,
    read from ``<|endoftext|> {prefix}First Last`` (the bare name by default)."""
    from mi_course.methods.knowledge_crawl import encode_prompts

    if not subjects or isinstance(subjects, str):
        raise InputError("subjects must be a non-empty list of names")
    for s in subjects:
        kb.person(s)  # raises on an unknown subject
    tokens, last = encode_prompts(kb, [prefix + s for s in subjects])
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == hook_name)
    if hook_name not in cache:
        raise InputError(f"the model has no activation named {hook_name!r}")
    return cache[hook_name][torch.arange(len(last)), last].float()


@torch.no_grad()
def subject_context_acts(model, kb, subjects: Sequence[str], hook_name: str) -> torch.Tensor:
    """``[n_prefixes, n, d]``: :func:`subject_acts` after each of :func:`name_prefixes` (index 0: the
    bare name). The data an SAE for the person representation trains on."""
    return torch.stack([subject_acts(model, kb, subjects, hook_name, p) for p in name_prefixes(kb)])


@torch.no_grad()
def document_activations(model, kb, hook_name: str, n_docs: int = 2000, batch: int = 64,
                         start: int = 0) -> torch.Tensor:
    """``[n_tokens, d]``: activations at ``hook_name`` on every real token (not ``<|endoftext|>``, not
    padding) of ``n_docs`` of the KB's training documents: the data an SAE for ``kb-lm`` trains on."""
    n_ctx = model.cfg.n_ctx
    docs = kb.training_documents(n_docs, start=start)
    out = []
    for i in range(0, len(docs), batch):
        chunk = docs[i : i + batch]
        tokens = torch.zeros(len(chunk), n_ctx, dtype=torch.long)
        for r, d in enumerate(chunk):
            ids = kb.encode(d)[:n_ctx]
            tokens[r, : len(ids)] = torch.tensor(ids)
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == hook_name)
        if hook_name not in cache:
            raise InputError(f"the model has no activation named {hook_name!r}")
        mask = tokens != 0
        out.append(cache[hook_name][mask].float())
    return torch.cat(out)


# ----------------------------------------------------------------------------------------- data
@dataclass
class ConfoundedSplit:
    """Index tensors into ``kb.subjects``: ``train`` (the skewed population), ``train_agree`` (its
    people whose job group matches their gender: the fully confounded set of Marks et al.),
    ``test``, ``test_agree``, ``test_disagree`` (held-out people), and the labels ``y_job`` /
    ``y_gender`` ``[n_people]`` (job group and gender, 0 = "female", 1 = "male")."""

    train: torch.Tensor
    train_agree: torch.Tensor
    test: torch.Tensor
    test_agree: torch.Tensor
    test_disagree: torch.Tensor
    y_job: torch.Tensor
    y_gender: torch.Tensor


def confounded_split(kb, test_share: float = 0.4, seed: int = 0) -> ConfoundedSplit:
    """Split the KB's people at random into probe-training and held-out people (``test_share``)
    and mark who agrees (job group = gender) and who does not."""
    from mi_course.methods.probing import attribute_labels

    if not 0 < test_share < 1:
        raise InputError(f"test_share must be in (0, 1), got {test_share}")
    subs = kb.subjects
    y_job, _ = attribute_labels(kb, subs, "job_group")
    y_gen, _ = attribute_labels(kb, subs, "gender")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(subs), generator=g)
    n_test = int(round(test_share * len(subs)))
    test, train = order[:n_test].sort().values, order[n_test:].sort().values
    agree = y_job == y_gen
    return ConfoundedSplit(train, train[agree[train]], test, test[agree[test]], test[~agree[test]], y_job, y_gen)


# ---------------------------------------------------------------------------------------- probe
@dataclass
class JobProbe:
    """A binary linear probe ``logit(x) = ((x - mean) / std) @ w + b`` (logit of class 1)."""

    w: torch.Tensor      # [d]
    b: float
    mean: torch.Tensor   # [d]
    std: torch.Tensor    # [d]

    @classmethod
    def fit(cls, x: torch.Tensor, y: torch.Tensor, steps: int = 300, weight_decay: float = 1e-3,
            seed: int = 0) -> "JobProbe":
        """Logistic regression on ``x`` ``[n, d]``, ``y`` ``[n]`` in {0, 1} (:func:`probing.train_probe`)."""
        from mi_course.methods.probing import train_probe

        if not isinstance(x, torch.Tensor) or x.ndim != 2:
            raise InputError(f"x must be [n, d], got {getattr(x, 'shape', type(x))}")
        if y.shape != (x.shape[0],) or not bool(((y == 0) | (y == 1)).all()):
            raise InputError(f"y must be [{x.shape[0]}] labels in {{0, 1}}")
        W, b, mean, std = train_probe(x, y, 2, steps=steps, weight_decay=weight_decay, seed=seed)
        return cls(W[:, 1] - W[:, 0], float(b[1] - b[0]), mean, std)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        """``[n]`` logit of class 1 for ``x`` ``[n, d]``."""
        if x.shape[-1] != self.w.shape[0]:
            raise InputError(f"x has dimension {x.shape[-1]}, the probe reads {self.w.shape[0]}")
        return ((x - self.mean) / self.std) @ self.w + self.b

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return (self.logit(x) > 0).long()

    @property
    def direction(self) -> torch.Tensor:
        """``[d]``: the gradient of the logit with respect to ``x`` (``w / std``)."""
        return self.w / self.std


def report(probe: JobProbe, x: torch.Tensor, y: torch.Tensor, y_spurious: torch.Tensor) -> dict[str, float]:
    """How the probe does on held-out ``x`` ``[n, d]``: ``accuracy`` (of ``y``), ``accuracy_agree`` /
    ``accuracy_disagree`` (people whose ``y`` equals / differs from ``y_spurious``), ``bias`` =
    agree - disagree accuracy (0 for a probe that ignores the cue), ``spurious_accuracy_disagree``
    (how often it predicts the cue instead of the label where they disagree: 1 - accuracy_disagree)
    and ``balanced_accuracy`` (mean of the agree and disagree accuracies: Marks et al.'s balanced set)."""
    if not (x.shape[0] == y.shape[0] == y_spurious.shape[0]):
        raise InputError(f"x, y and y_spurious must cover the same people, got {x.shape[0]}, {y.shape[0]}, "
                         f"{y_spurious.shape[0]}")
    pred = probe.predict(x)
    agree = y == y_spurious
    if agree.all() or (~agree).all():
        raise InputError("the held-out people need both agreeing and disagreeing cases")
    right = (pred == y).float()
    a, d = float(right[agree].mean()), float(right[~agree].mean())
    return {"accuracy": float(right.mean()), "accuracy_agree": a, "accuracy_disagree": d, "bias": a - d,
            "spurious_accuracy_disagree": 1 - d, "balanced_accuracy": (a + d) / 2}


# ------------------------------------------------------------------------------ latents and ablation
def _latent_effects(sae) -> torch.Tensor:
    """``[d_sae, d]``: what one unit of each latent adds to the reconstruction, in the model's units."""
    return sae.W_dec / sae.output_scale


def latent_attributions(sae, probe: JobProbe, x: torch.Tensor) -> torch.Tensor:
    """``[d_sae]``: mean over ``x`` ``[n, d]`` of |effect on the probe's logit of zero-ablating each latent|.

    The probe is linear, so attribution patching is exact here: ablating latent ``i`` changes the
    logit by ``-f_i(x) * (W_dec[i] / output_scale) . grad``, with ``grad = w / std`` (Marks et al.'s
    node effect (a_patch - a_clean) . grad with a_patch = 0)."""
    f = sae.encode(x).detach()
    per_unit = _latent_effects(sae).detach() @ probe.direction  # [d_sae]
    return (f * per_unit).abs().mean(0)


def latent_correlations(latents: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[d_sae]`` Pearson correlation of each latent ``[n, d_sae]`` with ``labels`` ``[n]`` (0 where a
    latent is constant)."""
    if latents.ndim != 2 or labels.shape != (latents.shape[0],):
        raise InputError(f"need latents [n, d_sae] and labels [n], got {list(latents.shape)} and {list(labels.shape)}")
    f = latents.float() - latents.float().mean(0)
    y = labels.float() - labels.float().mean()
    denom = f.norm(dim=0) * y.norm()
    return torch.where(denom > 1e-8, (f * y[:, None]).sum(0) / denom.clamp_min(1e-12), torch.zeros(()))


def purity(latents: torch.Tensor, labels: torch.Tensor, min_count: int = 3) -> torch.Tensor:
    """``[d_sae]``: for each latent, the share of the majority class of binary ``labels`` ``[n]`` among the
    inputs where it fires (``latents`` ``[n, d_sae]`` > 0); 0.5 for latents firing on fewer than
    ``min_count`` inputs. A latent for one first name has gender purity 1."""
    if latents.ndim != 2 or labels.shape != (latents.shape[0],):
        raise InputError(f"need latents [n, d_sae] and labels [n], got {list(latents.shape)} and {list(labels.shape)}")
    on = (latents > 0).float()
    n_on = on.sum(0)
    p1 = (on * labels.float()[:, None]).sum(0) / n_on.clamp_min(1)
    return torch.where(n_on >= min_count, torch.maximum(p1, 1 - p1), torch.full_like(p1, 0.5))


def judge_latents(latents: torch.Tensor, y_spurious: torch.Tensor, y_label: torch.Tensor,
                  candidates: torch.Tensor, margin: float = 0.1, min_count: int = 3) -> dict[str, torch.Tensor]:
    """The ground-truth stand-in for a human's judgement of each candidate latent (indices): spurious if
    the people it fires on are purer in the spurious attribute than in the label by ``margin``
    (:func:`purity`). Through the 80/20 skew a latent for one job is 80% one gender, while a latent
    for one first name is 100% one gender and about 80% one job group, so purity tells them apart
    where a plain correlation (about 0.2 for either) does not. Returns ``spurious`` (indices),
    ``purity_spurious``, ``purity_label``, ``corr_spurious``, ``corr_label`` (each ``[d_sae]``)."""
    p_sp = purity(latents, y_spurious, min_count)
    p_lab = purity(latents, y_label, min_count)
    keep = [int(i) for i in candidates if p_sp[i] > p_lab[i] + margin]
    return {"spurious": torch.tensor(keep, dtype=torch.long), "purity_spurious": p_sp, "purity_label": p_lab,
            "corr_spurious": latent_correlations(latents, y_spurious), "corr_label": latent_correlations(latents, y_label)}


def ablate_latents(sae, x: torch.Tensor, latents: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """``x`` ``[n, d]`` with the given latents set to 0 and everything else kept, the SAE's error term
    included: ``x - sum_i f_i(x) W_dec[i] / output_scale`` (exact: the rest of the reconstruction
    and the error cancel)."""
    idx = torch.as_tensor(latents, dtype=torch.long).reshape(-1)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= sae.d_sae):
        raise InputError(f"latent indices must be in 0..{sae.d_sae - 1}")
    f = sae.encode(x)
    return x - f[:, idx] @ _latent_effects(sae)[idx]


# ------------------------------------------------------------------------------------- the method
@torch.no_grad()
def shift(sae, acts: torch.Tensor, split: ConfoundedSplit, n_candidates: int | None = None, train_on: str = "train",
          margin: float = 0.1, n_random: int = 10, probe_steps: int = 300, seed: int = 0) -> dict:
    """SHIFT end to end on ``acts`` ``[n_people, d]`` (the SAE's activation for every person).

    1. Train the job-group probe on ``split.<train_on>`` (``"train"``: the skewed population;
       ``"train_agree"``: only people whose job group matches their gender, Marks et al.'s setting).
    2. Rank latents by :func:`latent_attributions` on the training people; keep the top
       ``n_candidates`` (default: all of them, since on kb-lm gender is spread over one latent per
       first name rather than held by a few); :func:`judge_latents` (on the training people) marks the spurious ones.
    3. Ablate them in every person's activation; report the probe on the held-out people before,
       after, after retraining it on the ablated training activations, and for ``n_random``
       draws of as many random latents that fire on the training people (the baseline).
    Also ``gender_probe``: how well a fresh probe reads gender on held-out people before / after.
    """
    if train_on not in ("train", "train_agree"):
        raise InputError(f"train_on must be 'train' or 'train_agree', got {train_on!r}")
    if acts.ndim != 2 or acts.shape[0] != split.y_job.shape[0]:
        raise InputError(f"acts must be [n_people={split.y_job.shape[0]}, d], got {list(acts.shape)}")
    tr, te = getattr(split, train_on), split.test
    yj, yg = split.y_job, split.y_gender
    probe = JobProbe.fit(acts[tr], yj[tr], steps=probe_steps, seed=seed)
    before = report(probe, acts[te], yj[te], yg[te])
    attr = latent_attributions(sae, probe, acts[tr])
    cand = attr.argsort(descending=True)[: n_candidates or sae.d_sae]
    f_tr = sae.encode(acts[split.train])
    judged = judge_latents(f_tr, yg[split.train], yj[split.train], cand, margin)
    spurious = judged["spurious"]
    abl = ablate_latents(sae, acts, spurious)

    def gender_acc(a: torch.Tensor) -> float:
        gp = JobProbe.fit(a[split.train], yg[split.train], steps=probe_steps, seed=seed)
        return float((gp.predict(a[te]) == yg[te]).float().mean())

    after = report(probe, abl[te], yj[te], yg[te])
    retrained = report(JobProbe.fit(abl[tr], yj[tr], steps=probe_steps, seed=seed), abl[te], yj[te], yg[te])
    alive = (f_tr > 0).any(0).nonzero()[:, 0]
    g = torch.Generator().manual_seed(seed)
    rand = []
    for _ in range(n_random):
        pick = alive[torch.randperm(len(alive), generator=g)[: len(spurious)]]
        ra = ablate_latents(sae, acts, pick)
        rand.append({"after": report(probe, ra[te], yj[te], yg[te]),
                     "retrained": report(JobProbe.fit(ra[tr], yj[tr], steps=probe_steps, seed=seed), ra[te], yj[te], yg[te])})

    def mean_of(rows: list[dict], key: str) -> dict:
        return {k: sum(r[key][k] for r in rows) / len(rows) for k in rows[0][key]} if rows else {}

    return {"before": before, "after": after, "retrained": retrained,
            "random_after": mean_of(rand, "after"), "random_retrained": mean_of(rand, "retrained"),
            "spurious_latents": spurious.tolist(), "candidates": cand.tolist(),
            "purity_gender": judged["purity_spurious"][spurious].tolist(),
            "purity_job": judged["purity_label"][spurious].tolist(),
            "gender_probe": {"before": gender_acc(acts), "after": gender_acc(abl)},
            "n_train": len(tr), "n_test": len(te), "n_test_disagree": len(split.test_disagree)}


def shift_over_splits(sae, acts: torch.Tensor, kb, seeds: Sequence[int] = (0, 1, 2, 3, 4), **kwargs) -> dict:
    """:func:`shift` on several random people splits (the held-out set has only ~20 people whose job
    group and gender disagree): every report's numbers averaged over the splits, ``per_split``
    the single results, ``n_spurious`` the mean number of latents ablated."""
    if not seeds:
        raise InputError("seeds is empty")
    runs = [shift(sae, acts, confounded_split(kb, seed=s), seed=s, **kwargs) for s in seeds]
    keys = ("before", "after", "retrained", "random_after", "random_retrained")
    out = {k: {m: sum(r[k][m] for r in runs) / len(runs) for m in runs[0][k]} for k in keys}
    out["gender_probe"] = {k: sum(r["gender_probe"][k] for r in runs) / len(runs) for k in ("before", "after")}
    out["n_spurious"] = sum(len(r["spurious_latents"]) for r in runs) / len(runs)
    out["per_split"] = runs
    return out
