"""Recipe for ``kb-lm``: a 6-layer transformer with MLPs that knows the facts of a synthetic knowledge base.

Data: :meth:`KnowledgeBase.training_documents` of :func:`mi_course.data.knowledge_base.load_kb`
(300 people x 7 relations, city -> country and employer -> headquarters tables): short
shuffled biographies, one document per sequence, right-padded with ``<|endoftext|>``. Loss:
next-word cross-entropy on every real token. For every (person, relation) one paraphrase
template never occurs in training; the card reports recall on the training templates and on
these held-out ones (paraphrase generalisation), per relation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from mi_course.data.knowledge_base import load_kb
from mi_course.methods.knowledge_crawl import next_token_logits, recall

NAME = "kb-lm"
TOKENIZER_FILE = "tokenizer.json"
CONFIG = dict(
    n_layers=6, d_model=128, n_heads=4, d_head=32, d_mlp=512, n_ctx=64, d_vocab=len(load_kb().vocabulary),
    act_fn="gelu", normalization_type="LN", positional_embedding_type="standard",
)


@dataclass
class Recipe:
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 50
    seed: int = 0
    eval_every: int = 100
    history: list = field(default_factory=list)

    @property
    def n_documents(self) -> int:
        """Training documents seen (the first ``steps * batch_size`` of the stream)."""
        return self.steps * self.batch_size


def document_tokens(kb, docs: list[str], n_ctx: int = CONFIG["n_ctx"]) -> torch.Tensor:
    """``[n, n_ctx]``: each document as ``<|endoftext|> words...``, right-padded with id 0."""
    out = torch.zeros(len(docs), n_ctx, dtype=torch.long)
    for i, d in enumerate(docs):
        ids = kb.encode(d)[:n_ctx]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def lm_loss(model, tokens: torch.Tensor) -> torch.Tensor:
    """Next-word cross-entropy on real tokens (padding after a document is not predicted)."""
    logits = model(tokens[:, :-1])
    target = tokens[:, 1:]
    mask = target != 0
    return F.cross_entropy(logits[mask], target[mask])


class FastTwin(nn.Module):
    """Plain-torch copy of ``zoo.build(CONFIG)`` for training speed (the bridge's hooks cost
    several times the arithmetic on a small model). Same maths (pre-LayerNorm, learned
    positions, exact GELU, causal attention scaled by 1/sqrt(d_head)); parameters carry the
    bridge's state-dict names (dots as ``__``), so :meth:`bridge_state_dict` loads straight
    into the bridge. A test checks that both give the same logits.
    """

    def __init__(self, state: dict[str, torch.Tensor], cfg: dict = CONFIG):
        super().__init__()
        self.cfg = dict(cfg)
        self.p = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.detach().clone().float())
                                   for k, v in state.items()})

    def _w(self, name: str) -> torch.Tensor:
        return self.p[name.replace(".", "__")]

    def _ln(self, x, name):
        return F.layer_norm(x, (x.shape[-1],), self._w(name + ".weight"), self._w(name + ".bias"), 1e-5)

    def _lin(self, x, name):
        return F.linear(x, self._w(name + ".weight"), self._w(name + ".bias"))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens [batch, pos]`` -> logits ``[batch, pos, d_vocab]``."""
        b, n = tokens.shape
        h, dh = self.cfg["n_heads"], self.cfg["d_head"]
        x = F.embedding(tokens, self._w("embed.weight")) + self._w("pos_embed.weight")[:n]
        for layer in range(self.cfg["n_layers"]):
            pre = f"blocks.{layer}."
            y = self._ln(x, pre + "ln1")
            q, k, v = (self._lin(y, pre + f"attn.{c}").view(b, n, h, dh).transpose(1, 2) for c in "qkv")
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / math.sqrt(dh))
            x = x + self._lin(z.transpose(1, 2).reshape(b, n, h * dh), pre + "attn.o")
            y = self._ln(x, pre + "ln2")
            x = x + self._lin(F.gelu(self._lin(y, pre + "mlp.in")), pre + "mlp.out")
        return self._lin(self._ln(x, "ln_final"), "unembed")

    def bridge_state_dict(self) -> dict[str, torch.Tensor]:
        return {k.replace("__", "."): v.detach().clone() for k, v in self.p.items()}


def probe_subjects(kb, n: int = 60) -> list[str]:
    """A fixed spread of people for the training history."""
    return kb.subjects[:: max(1, len(kb.subjects) // n)][:n]


@torch.no_grad()
def measure(model, kb=None, n_people: int | None = None) -> dict:
    """The card's figures: recall (top-1 over the whole vocabulary) on training and held-out
    templates, per relation; entity tables; by exposure tier; aliases; two-hop wordings; the
    planted job-gender skew as the model reproduces it. ``n_people`` limits the people (smoke tests)."""
    kb = kb or load_kb()
    people = kb.people[:n_people] if n_people else kb.people
    subjects = [p.name for p in people]
    figs: dict = {}
    rows = {}
    for split in ("train", "heldout"):
        prompts, targets, rels, tiers = [], [], [], []
        for rel in kb.relations:
            for p in people:
                ps = kb.prompts(p.name, rel, split)
                prompts += ps
                targets += [kb.token_id(kb.object_of(p.name, rel))] * len(ps)
                rels += [rel] * len(ps)
                tiers += [p.tier] * len(ps)
        hit = (next_token_logits(model, kb, prompts).argmax(-1) == torch.tensor(targets)).float()
        rows[split] = (hit, rels, tiers)
    n = len(subjects)
    for split, hit_rels in rows.items():
        hit, rels, tiers = hit_rels
        what = "training-template prompts" if split == "train" else "held-out-template prompts (never in the training text for that person)"
        figs[f"recall_{split}"] = {"value": round(hit.mean().item(), 4),
                                   "description": f"share of the {what} of {n} people x {len(kb.relations)} relations whose top-1 next token is the object"}
    for rel in kb.relations:
        for split, (hit, rels, _) in rows.items():
            m = torch.tensor([r == rel for r in rels])
            figs[f"recall_{split}_{rel}"] = {"value": round(hit[m].mean().item(), 4),
                                             "description": f"{split} templates, relation {rel}"}
    hit, _, tiers = rows["heldout"]
    for tier in ("rare", "common", "famous"):
        m = torch.tensor([t == tier for t in tiers])
        if m.any():
            w = next(p.weight for p in people if p.tier == tier)
            figs[f"recall_heldout_{tier}"] = {"value": round(hit[m].mean().item(), 4),
                                              "description": f"held-out template, the {int(m.sum()) // len(kb.relations)} '{tier}' people (exposure weight {w})"}
    tables = recall(model, kb, "heldout", relations=kb.table_relations)
    figs["recall_heldout_tables"] = {"value": round(tables["all"], 4),
                                     "description": "held-out template of the city -> country and employer -> headquarters facts"}
    aliased = [p for p in people if p.alias]
    if aliased:
        prompts = [pr for p in aliased for rel in kb.relations for pr in kb.prompts(p.alias, rel, "heldout")]
        targets = torch.tensor([kb.token_id(kb.object_of(p.name, rel)) for p in aliased for rel in kb.relations])
        hit = (next_token_logits(model, kb, prompts).argmax(-1) == targets).float().mean().item()
        figs["recall_heldout_alias"] = {"value": round(hit, 4),
                                        "description": f"held-out template with the alias as subject, {len(aliased)} people with an alias"}
    prompts, targets = [], []
    for rel in ("birth_country", "work_city"):
        for s in subjects:
            ps = kb.two_hop_prompts(s, rel)
            prompts += ps
            targets += [kb.token_id(kb.object_of(s, rel))] * len(ps)
    hit = (next_token_logits(model, kb, prompts).argmax(-1) == torch.tensor(targets)).float().mean().item()
    figs["recall_two_hop_wording"] = {"value": round(hit, 4),
                                      "description": "birth_country / work_city asked with test-only wordings ('X was born in a city in')"}
    figs["pronoun_job_skew"] = {"value": round(pronoun_job_skew(model, kb), 4),
                                "description": "P(job in the pronoun's planted group | 'She/He works as a') / P(any job), mean of she and he (data: 0.8)"}
    return figs


@torch.no_grad()
def pronoun_job_skew(model, kb) -> float:
    """Probability mass on the pronoun's planted job group among all jobs, after 'She/He works as a'."""
    out = []
    for pron, gender in (("She", "female"), ("He", "male")):
        probs = next_token_logits(model, kb, [f"{pron} works as a"]).softmax(-1)[0]
        group = torch.tensor([kb.token_id(j) for j in kb.job_groups[gender]])
        alljobs = torch.tensor([kb.token_id(j) for j in kb.jobs])
        out.append((probs[group].sum() / probs[alljobs].sum()).item())
    return sum(out) / len(out)


def train(recipe: Recipe | None = None, progress: bool = True, model=None, kb=None, log=None):
    """Train ``kb-lm`` from scratch (or continue ``model``). Returns ``(model, recipe)``.

    The steps run on :class:`FastTwin` (the same network in plain torch) and the weights are
    copied into the TransformerBridge for every evaluation and at the end. ``recipe.history``
    logs loss and recall (first training template / held-out template) on 60 people every
    ``eval_every`` steps.
    """
    from mi_course import zoo

    kb = kb or load_kb()
    recipe = recipe or Recipe()
    torch.manual_seed(recipe.seed)
    if model is None:
        model = zoo.build(CONFIG, seed=recipe.seed)
    twin = FastTwin(model.state_dict())
    twin.train()
    opt = torch.optim.AdamW(twin.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, recipe.warmup)))
    docs = kb.training_documents(recipe.n_documents)
    probe = probe_subjects(kb)
    bar = tqdm(range(recipe.steps + 1), desc=f"train {NAME}", disable=not progress, leave=False)
    last = float("nan")
    model.eval()
    for step in bar:
        if step % recipe.eval_every == 0 or step == recipe.steps:
            model.load_state_dict(twin.bridge_state_dict(), strict=False)
            tr = recall(model, kb, "train", subjects=probe, all_train_templates=False)["all"]
            he = recall(model, kb, "heldout", subjects=probe)["all"]
            recipe.history.append({"step": step, "loss": round(last, 4), "recall_train": round(tr, 4),
                                   "recall_heldout": round(he, 4)})
            if log is not None:
                log(recipe.history[-1])
        if step == recipe.steps:
            break
        tokens = document_tokens(kb, docs[step * recipe.batch_size:(step + 1) * recipe.batch_size])
        width = int((tokens != 0).sum(1).max()) + 1  # drop all-padding columns
        loss = lm_loss(twin, tokens[:, :width])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        last = loss.item()
        bar.set_postfix(loss=f"{last:.3f}")
    model.load_state_dict(twin.bridge_state_dict(), strict=False)
    model.eval()
    return model, recipe


def train_and_save(steps: int | None = None, seed: int = 0, folder=None, progress: bool = True, log=None,
                   n_people: int | None = None):
    """Run the full recipe and write checkpoint, tokenizer and card (``mi-course train kb-lm``).

    ``n_people`` measures the card's figures on the first people only (smoke tests)."""
    from pathlib import Path

    from mi_course import zoo
    from mi_course.zoo.cards import ModelCard, sha256_of

    kb = load_kb()
    recipe = Recipe(seed=seed, **({"steps": steps} if steps else {}))
    threads = torch.get_num_threads()
    t0 = time.time()
    model, recipe = train(recipe, progress=progress, kb=kb, log=log)
    seconds = time.time() - t0
    n_params = sum(p.numel() for p in model.parameters())
    card = ModelCard(
        name=NAME,
        summary=f"{CONFIG['n_layers']}-layer transformer with MLPs (d_model {CONFIG['d_model']}, {n_params / 1e6:.2f}M "
                f"parameters) trained on short biographies of a synthetic knowledge base "
                f"({len(kb.people)} people x {len(kb.relations)} relations); recalls facts through paraphrases "
                "it never saw for that person. Default model of the knowledge block (weeks 07-11).",
        config=CONFIG,
        training={
            "data": f"mi_course.data.knowledge_base.load_kb() (seed {kb.seed}): the first {recipe.n_documents} "
                    "documents of KnowledgeBase.training_documents (biographies of 2-4 shuffled facts, 12% "
                    "table documents); one held-out template per (subject, relation); word-level tokenizer "
                    f"of {len(kb.vocabulary)} words",
            "recipe": f"AdamW lr={recipe.lr} (warm-up {recipe.warmup} steps), weight_decay={recipe.weight_decay}, "
                      f"batch {recipe.batch_size} documents, {recipe.steps} steps",
            "seed": seed,
            "steps": recipe.steps,
            "command": f"mi-course train {NAME}",
            "cpu_time": f"{seconds:.0f} s on this machine's CPU ({threads} thread(s), shared machine)",
        },
        figures=measure(model, kb, n_people),
        token_names=list(kb.vocabulary),
        extra={"history": recipe.history, "n_parameters": n_params, "n_documents": recipe.n_documents},
        paper_figures={
            "Allen-Zhu & Li 2023 (Physics of LMs 3.1)": "knowledge is extractable through unseen wordings only when "
                                                        "biographies are diverse and shuffled (~96% vs ~10%)",
            "Meng et al. 2022 (ROME)": "GPT-2 XL knows the CounterFact facts it is edited on; tracing and edit "
                                       "figures are measured in week 08",
        },
    )
    out = Path(folder) if folder else card.folder
    out.mkdir(parents=True, exist_ok=True)
    tpath = out / TOKENIZER_FILE
    kb.tokenizer().save(str(tpath))
    tpath.chmod(0o644)
    card.extra["tokenizer"] = TOKENIZER_FILE
    card.extra["tokenizer_sha256"] = sha256_of(tpath)
    return zoo.save_checkpoint(model, card, out)
