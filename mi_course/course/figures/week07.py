"""Week 07 figures and numbers, computed from the shipped ``kb-lm`` exactly as the notebook computes them.

:func:`numbers` returns every figure the notebook's and the deck's prose quote; a test holds them.
"""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import torch

from mi_course import zoo
from mi_course.data.knowledge_base import load_kb
from mi_course.methods import knowledge_crawl as kc
from mi_course.methods import probing

THRESHOLD = 0.5
THRESHOLDS = [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
ATTRIBUTES = ("gender", "birth_country", "hobby")


@lru_cache(maxsize=1)
def _setup():
    model, kb = zoo.load("kb-lm"), load_kb()
    known = kb.subjects[::3]
    unknown = kb.unknown_people(100, seed=0)
    table = kc.answer_table(model, kb, known + unknown + kb.cities + kb.employers, n_paraphrases=2)
    return model, kb, known, unknown, table


@lru_cache(maxsize=1)
def crawl_numbers() -> dict:
    """Confidence of known vs made-up people; per-relation precision/recall at 0.5; the threshold curve."""
    model, kb, known, unknown, table = _setup()
    conf = {who: torch.tensor([kc.paraphrase_answer(table[(s, r)], 0.0)[1] for s in group for r in kb.relations])
            for who, group in [("known", known), ("unknown", unknown)]}
    truth = kc.truth_of(kb, known)
    graph = kc.crawl_graph(kc.table_query_fn(kb, table, THRESHOLD), known + unknown, kc.relations_of(kb))
    per = {}
    for rel in list(kb.relations) + list(kb.table_relations):
        g = {k: o for k, o in graph.items() if k[1] == rel}
        t = {k: o for k, o in truth.items() if k[1] == rel}
        per[rel] = kc.precision_recall(g, t)
    per["all"] = kc.precision_recall(graph, truth)
    curve = []
    for t in THRESHOLDS:
        g = kc.crawl_graph(kc.table_query_fn(kb, table, t), known + unknown, kc.relations_of(kb))
        curve.append(kc.precision_recall(g, truth))
    known_only = kc.crawl_graph(kc.table_query_fn(kb, table, THRESHOLD), known, kc.relations_of(kb))
    return {
        "median_conf_known": conf["known"].median().item(),
        "median_conf_unknown": conf["unknown"].median().item(),
        "share_confident_known": (conf["known"] >= THRESHOLD).float().mean().item(),
        "share_confident_unknown": (conf["unknown"] >= THRESHOLD).float().mean().item(),
        "per_relation": per,
        "curve": curve,
        "known_only": kc.precision_recall(known_only, truth),
        "_conf": conf,
    }


@lru_cache(maxsize=1)
def error_numbers() -> dict:
    model, kb, *_ = _setup()
    card = zoo.card("kb-lm")
    rows = kc.fact_hits(model, kb, "heldout")
    counts = kb.fact_counts(card.extra["n_documents"])
    hits = torch.tensor([r["hit"] for r in rows])
    stated = torch.tensor([counts[(r["subject"], r["relation"])] for r in rows])
    mean_count, rec = kc.recall_by_bins(hits, stated, 6)
    by_template = {}
    for r in rows:
        by_template.setdefault((r["relation"], r["template"]), []).append(r["hit"])
    return {"n_wrong": int((~hits).sum()), "n": len(rows), "stated_min": int(stated.min()),
            "stated_max": int(stated.max()), "stated_median": int(stated.median()),
            "bin_counts": mean_count.tolist(), "bin_recall": rec.tolist(),
            "template_recall": {k: sum(v) / len(v) for k, v in by_template.items()}}


@lru_cache(maxsize=1)
def probe_numbers() -> dict:
    model, kb, *_ = _setup()
    train, test = probing.split_people(kb, test_share=0.3, seed=0)
    L = model.cfg.n_layers
    acts = {split: torch.stack([probing.subject_last_token_acts(model, kb, people, people, layer) for layer in range(L + 1)])
            for split, people in [("train", train), ("test", test)]}
    out = {}
    for attribute in ATTRIBUTES:
        y_tr, classes = probing.attribute_labels(kb, train, attribute)
        y_te, _ = probing.attribute_labels(kb, test, attribute)
        real = [probing.probe_accuracy(acts["train"][l], y_tr, acts["test"][l], y_te, len(classes)) for l in range(L + 1)]
        shuf = [probing.probe_accuracy(acts["train"][l], probing.shuffled_labels(y_tr), acts["test"][l], y_te, len(classes))
                for l in range(L + 1)]
        majority = (y_te == torch.bincount(y_tr, minlength=len(classes)).argmax()).float().mean().item()
        out[attribute] = {"probe": real, "shuffled": shuf, "majority": majority, "n_test": len(test)}
    return out


def numbers() -> dict:
    """Everything the notebook and the deck quote."""
    return {"crawl": crawl_numbers(), "errors": error_numbers(), "probes": probe_numbers(),
            "card": {k: v["value"] for k, v in zoo.card("kb-lm").figures.items()}}


def confidence_hist():
    conf = crawl_numbers()["_conf"]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    for who, c in conf.items():
        ax.hist(c.numpy(), bins=20, range=(0, 1), alpha=0.6, label=f"{'made-up' if who == 'unknown' else who} people")
    ax.set_xlabel("confidence (mean probability of the best candidate)"); ax.set_ylabel("questions"); ax.legend()
    fig.tight_layout()
    return fig


def threshold_curve():
    curve = crawl_numbers()["curve"]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(THRESHOLDS, [c[0] for c in curve], "o-", label="precision")
    ax.plot(THRESHOLDS, [c[1] for c in curve], "s-", label="recall")
    ax.set_xlabel("don't-know threshold"); ax.set_title("crawl: 100 real + 100 made-up people"); ax.legend()
    fig.tight_layout()
    return fig


def recall_by_frequency():
    e = error_numbers()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(e["bin_counts"], e["bin_recall"], "o-")
    ax.set_xscale("log"); ax.set_xlabel("times the fact was stated in training"); ax.set_ylabel("held-out recall")
    fig.tight_layout()
    return fig


def probe_curves():
    p = probe_numbers()
    fig, axes = plt.subplots(1, len(p), figsize=(11, 2.8), sharey=True)
    for ax, (attribute, r) in zip(axes, p.items()):
        ax.plot(r["probe"], "o-", label="probe")
        ax.plot(r["shuffled"], "x--", label="shuffled labels")
        ax.axhline(r["majority"], color="gray", lw=0.8, label="majority")
        ax.set_title(attribute); ax.set_xlabel("layer")
    axes[0].set_ylabel("accuracy, unseen people"); axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
