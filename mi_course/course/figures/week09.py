"""Week 09 figures and the numbers the notebook's prose and the deck quote, read from the measured files
beside ``kb-lm``'s card (``measured_week09_scaling.json``, ``measured_week09_grace.json``,
``measured_week09_ripple.json``; each re-measured on a subset by its own test)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from mi_course import zoo

SCALING_STYLES = (("ROME (sequential)", "o-"), ("MEMIT (batch)", "s-"), ("no edit", "k:"))


def scaling() -> dict:
    """``{row name: {n edits: {"ES", "PS", "NS", "S", ...}}}`` (ints as keys) and the settings."""
    fig = zoo.card("kb-lm").measured("week09_scaling")
    rows = {name: {int(n): s for n, s in r.items()} for name, r in fig["rows"].items()}
    return {"rows": rows, "settings": fig["settings"], "seconds": fig["seconds"]}


def scaling_curve():
    """ES, PS, NS against the number of edits: sequential ROME vs MEMIT in one batch (and no edit)."""
    rows = scaling()["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
    for ax, m in zip(axes, ("ES", "PS", "NS")):
        for name, style in SCALING_STYLES:
            if name in rows:
                ns = sorted(rows[name])
                ax.plot(ns, [rows[name][n][m] for n in ns], style, label=name)
        ax.set_xscale("log"); ax.set_xlabel("number of edits"); ax.set_title(m); ax.set_ylim(-0.05, 1.05)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def ripple_table() -> dict:
    """``{row name: {criterion: accuracy}}`` from the ripple file (fractions)."""
    return zoo.card("kb-lm").measured("week09_ripple")["rows"]


def scaling_quotes() -> dict[str, str]:
    """The scaling numbers the notebook's section 6 and the deck quote, formatted as they appear
    (``"ROME ES 32"`` -> ``"0.59"``), for every point in the file."""
    rows = scaling()["rows"]
    out = {}
    for name, short in (("ROME (sequential)", "ROME"), ("MEMIT (batch)", "MEMIT")):
        for n, s in rows.get(name, {}).items():
            for m in ("ES", "PS", "NS", "S"):
                out[f"{short} {m} {n}"] = f"{s[m]:.2f}"
    return out
