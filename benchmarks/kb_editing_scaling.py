"""Week 09's scaling curve on ``kb-lm``: ROME applied sequentially vs MEMIT in one batch, 1 to 1,000 edits.

    python benchmarks/kb_editing_scaling.py                       # measure everything, print
    python benchmarks/kb_editing_scaling.py --write               # ... and write measured_week09_scaling.json
    python benchmarks/kb_editing_scaling.py --part rome --json a.json   # one part (rome | memit | none)
    python benchmarks/kb_editing_scaling.py --merge a.json b.json c.json --write

Requests: ``edit_evaluation.kb_cases(model, kb, 1000, seed=SEED)`` (counterfactual objects for 1,000 of
the KB's 1,500 base facts). ROME at layer ``ROME_LAYER`` (the last layer of MEMIT's range, as the paper's
GPT-2 XL comparison), applied one request after another and scored after the first 1, 10, 32, 100, 316,
1,000; MEMIT over ``memit.default_layers`` inserting the first n at once (its targets z depend only on the
unedited model, so each is computed once). Every point is scored on all n edited requests (ES, PS, NS;
neighbourhood prompts about subjects that are themselves edited are left out). Each part saves its points
as it reaches them (``--part ... --json``), so a run stopped early keeps what it measured; the file records
the points reached and the seconds spent. ``tests/test_kb_editing_scaling.py`` re-measures the 1- and
10-edit points.
"""

from __future__ import annotations

import json
import sys
import time

import torch

SEED = 3
SIZES = (1, 10, 32, 100, 316, 1000)
ROME_LAYER = 1


def _round(curve: dict) -> dict:
    return {str(n): {k: round(float(v), 4) for k, v in s.items()} for n, s in curve.items()}


def measure(part: str, sizes=SIZES, progress: bool = True, save: str | None = None) -> dict:
    """``{"rows": {name: {str(n): summary}}, "seconds": {name: s}}`` for one part (rome, memit or none);
    with ``save``, the points so far are written to that JSON file after each one."""
    from mi_course import zoo
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import edit_evaluation as ev
    from mi_course.methods import memit

    model = zoo.load("kb-lm")
    kb = load_kb()
    cases = ev.kb_cases(model, kb, max(sizes), seed=SEED)
    t0 = time.time()
    name = {"rome": "ROME (sequential)", "memit": "MEMIT (batch)", "none": "no edit"}.get(part, part)
    done: dict = {}

    def on_point(n, summary):
        done[n] = summary
        if save:
            with open(save, "w") as f:
                json.dump({"rows": {name: _round(done)}, "seconds": {name: round(time.time() - t0)}}, f, indent=1)
    if part == "rome":
        curve = memit.sequential_rome_curve(model, cases, kb, sizes, ROME_LAYER, progress=progress, on_point=on_point)
    elif part == "memit":
        curve = memit.memit_curve(model, cases, kb, sizes, progress=progress, on_point=on_point)
    elif part == "none":
        with torch.no_grad():
            curve = memit.no_edit_curve(model, cases, kb, sizes)
    else:
        raise SystemExit(f"unknown part {part!r}: rome, memit or none")
    return {"rows": {name: _round(curve)}, "seconds": {name: round(time.time() - t0)}}


def settings() -> dict:
    from mi_course import zoo
    from mi_course.methods import memit

    model = zoo.load("kb-lm")
    return {"seed": SEED, "sizes": list(SIZES), "requests": f"edit_evaluation.kb_cases(model, kb, {max(SIZES)}, seed={SEED})",
            "rome": f"layer {ROME_LAYER}, RomeHparams() defaults, C of the unedited model, one edit after another",
            "memit": f"layers {memit.default_layers(model)}, lambda {memit.default_mom2_update_weight(model)}, "
                     f"MemitHparams() defaults, all n at once",
            "scored_on": "all n edited requests; neighbourhood prompts about subjects edited on the same relation left out",
            "metrics": "ES, PS, NS fractions (ROME/MEMIT summarize.py); S harmonic mean"}


def merge(parts: list[dict]) -> dict:
    out = {"settings": settings(), "rows": {}, "seconds": {}}
    for p in parts:
        out["rows"].update(p["rows"])
        out["seconds"].update(p["seconds"])
    return out


def main(argv: list[str]) -> dict:
    torch.set_num_threads(1)
    if "--merge" in argv:
        files = [a for a in argv[argv.index("--merge") + 1:] if not a.startswith("--")]
        fig = merge([json.load(open(f)) for f in files])
    elif "--part" in argv:
        fig = measure(argv[argv.index("--part") + 1],
                      save=argv[argv.index("--json") + 1] if "--json" in argv else None)
    else:
        fig = merge([measure(p) for p in ("none", "memit", "rome")])
    print(json.dumps(fig, indent=1), flush=True)
    if "--json" in argv:
        with open(argv[argv.index("--json") + 1], "w") as f:
            json.dump(fig, f, indent=1)
    if "--write" in argv:
        from mi_course import zoo
        print("written to", zoo.card("kb-lm").write_measured("week09_scaling", fig))
    return fig


if __name__ == "__main__":
    main(sys.argv[1:])
