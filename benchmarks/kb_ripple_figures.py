"""Measure week 09's ripple-effect table (RippleEdits' criteria) on ``kb-lm``.

    python benchmarks/kb_ripple_figures.py            # print
    python benchmarks/kb_ripple_figures.py --write    # also write zoo/models/kb-lm/measured_week09_ripple.json
    python benchmarks/kb_ripple_figures.py --write --only MEMIT   # measure one row, merge it into the file

40 seeded edits (``ripple_effects.ripple_edits(model, kb, 40, seed=0)``: 20 person edits of birth_city /
employer, 20 table edits of a city's country / an employer's headquarters), each applied alone to the
original model, scored with the precondition filter. Rows: no edit, ROME, FT, FT-L (layer 1, where
week 08's ROME works: ES 0.95), GRACE (layer 4, ε_init 1.0, 3.0 and 5.0), and MEMIT when
``mi_course.methods.memit`` provides ``memit_editor`` (otherwise the row says it is missing).
``tests/test_kb_ripple_figures.py`` re-measures the no-edit and GRACE rows.
"""

from __future__ import annotations

import json
import sys
import time

import torch

N_EDITS = 40
SEED = 0
WEIGHT_LAYER = 1


def editors() -> dict:
    """``{row name: editor or a string saying why it is missing}``."""
    from mi_course.methods import edit_evaluation as ev
    from mi_course.methods import grace

    out = {"no edit": ev.no_edit, "ROME": ev.rome_editor(WEIGHT_LAYER), "FT": ev.fine_tune_editor(WEIGHT_LAYER),
           "FT-L": ev.fine_tune_editor(WEIGHT_LAYER, norm_constraint=ev.FT_L_EPS),
           "GRACE": grace.grace_editor(), "GRACE eps 3": grace.grace_editor(eps_init=3.0),
           "GRACE eps 5": grace.grace_editor(eps_init=5.0)}
    try:
        from mi_course.methods.memit import memit_editor
    except ImportError as err:  # MEMIT lives in its own module (week 09's other half)
        out["MEMIT"] = f"missing: {err}"
    else:
        out["MEMIT"] = memit_editor()
    return out


def measure(names=None, n_edits: int = N_EDITS, progress: bool = True) -> dict:
    from mi_course import zoo
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import ripple_effects as rip

    torch.set_num_threads(1)
    model = zoo.load("kb-lm")
    kb = load_kb()
    edits = rip.ripple_edits(model, kb, n_edits, seed=SEED)
    out = {"settings": {"n_edits": n_edits, "seed": SEED, "weight_layer": WEIGHT_LAYER, "grace_layer": 4,
                        "metric": "top-1 next token; a test is scored only if the unedited model passes its "
                                  "preconditions (RippleEdits)"},
           "rows": {}, "seconds": {}, "paper_gpt2_xl": rip.PAPER}
    for name, editor in editors().items():
        if names is not None and name not in names:
            continue
        if isinstance(editor, str):
            out["rows"][name] = editor
            continue
        t = time.time()
        row = rip.ripple_table(model, kb, editor, edits=edits, progress=progress)
        out["rows"][name] = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        out["seconds"][name] = round(time.time() - t)
        print(name, json.dumps(out["rows"][name]), flush=True)
    return out


def main(write: bool = False, only: list[str] | None = None) -> dict:
    """``only``: measure these rows and merge them into the shipped file (e.g. ``--only MEMIT``)."""
    from mi_course import zoo

    out = measure(only)
    if only:
        shipped = zoo.card("kb-lm").measured("week09_ripple")
        shipped["rows"].update(out["rows"])
        shipped["seconds"].update(out["seconds"])
        out = shipped
    print(json.dumps(out, indent=1))
    if write:
        print("written to", zoo.card("kb-lm").write_measured("week09_ripple", out))
    return out


if __name__ == "__main__":
    main("--write" in sys.argv, sys.argv[sys.argv.index("--only") + 1:] if "--only" in sys.argv else None)
