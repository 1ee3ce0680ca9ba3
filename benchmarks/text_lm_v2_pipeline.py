"""Everything block 3 measures on ``text-lm-v2``, in order, each step skipped when its result is there.

    python benchmarks/text_lm_v2_pipeline.py            # run what is missing
    python benchmarks/text_lm_v2_pipeline.py --plan     # only say what would run
    python benchmarks/text_lm_v2_pipeline.py --force dashboards   # redo one step (and nothing else)

1. ``text-lm-v2`` itself (``textlm2_recipe``; resumes a stopped run from its state, then measures
   and writes the zoo folder with its card, tuned lens and held-out sample).
2. Its SAE and transcoders (``mi-course train NAME`` for ``text-lm-v2-L1-resid-topk``,
   ``text-lm-v2-L0-transcoder-topk``, ``text-lm-v2-L1-transcoder-topk``): redone when the shipped one
   was trained on another checkpoint (its card's ``model_sha256``).
3. The measured files the weeks read: the SAE's dashboards and autointerp scores (week 12),
   feature splitting (week 12), steering and a sparse feature circuit (week 13), transcoder circuits
   (week 14). Each benchmark runs as its own process, so one failing does not stop the others; a
   step counts as done when its measured file is newer than the model's checkpoint.

Prints each step's wall time at the end (and writes them to ``pipeline_times.json`` beside the card):
what a maintainer needs to plan the next retraining.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

MODEL = "text-lm-v2"
SAE = "text-lm-v2-L1-resid-topk"
TRANSCODERS = ("text-lm-v2-L0-transcoder-topk", "text-lm-v2-L1-transcoder-topk")
HERE = Path(__file__).resolve().parent

#: (step, measured topic that proves it done, the zoo SAEs it reads, benchmark command)
BENCHMARKS = (
    ("dashboards", None, (SAE,), ["sae_dashboards.py", "--sae", SAE, "--write"]),
    ("feature_splitting", "week12_splitting", (), ["sae_feature_splitting.py", "--model", MODEL, "--write"]),
    ("steering_circuits", "week13_circuit", (SAE,), ["textlm_steering_circuits.py", "--model", MODEL, "--write"]),
    ("transcoder_circuits", "week14_circuit", TRANSCODERS,
     ["textlm_transcoder_circuits.py", "--model", MODEL, "--write"]),
)


def _model_done() -> bool:
    from mi_course import zoo

    if MODEL not in zoo.names():
        return False
    return not zoo.card(MODEL).summary.startswith("SNAPSHOT")


def _trained_on_this_model(name: str) -> bool:
    from mi_course import zoo

    if name not in zoo.sae_names():
        return False
    return (zoo.sae_card(name).extra or {}).get("model_sha256") == zoo.card(MODEL).sha256


def _benchmark_done(step: str, topic: str | None) -> bool:
    from mi_course import zoo

    if step == "dashboards":
        return _trained_on_this_model(SAE) and "feature_stats" in (zoo.sae_card(SAE).extra or {}) and \
            zoo.sae_card(SAE).extra["feature_stats"].get("sae_sha256") == zoo.sae_card(SAE).sha256
    card = zoo.card(MODEL)
    path = card.folder / f"measured_{topic}.json"
    return path.exists() and path.stat().st_mtime > (card.folder / "model.safetensors").stat().st_mtime


def plan(force: tuple[str, ...] = ()) -> list[str]:
    """The steps that would run now, in order."""
    if "model" in force or not _model_done():
        return ["model", SAE, *TRANSCODERS, *(b[0] for b in BENCHMARKS)]
    steps = [name for name in (SAE, *TRANSCODERS) if name in force or not _trained_on_this_model(name)]
    for step, topic, reads, _ in BENCHMARKS:
        if step in force or set(reads) & set(steps) or not _benchmark_done(step, topic):
            steps.append(step)
    return steps


def run(force: tuple[str, ...] = ()) -> tuple[dict[str, float], list[str]]:
    """Run :func:`plan`'s steps; ``(seconds per step, failed benchmark steps)``."""
    from mi_course import zoo
    from mi_course.training import recipe

    times: dict[str, float] = {}
    failed = []
    for step in plan(force):
        t0 = time.time()
        print(f"\n=== {step} ===", flush=True)
        if step == "model":
            from mi_course.training import textlm2_recipe

            textlm2_recipe.train_and_save()
        elif step in (SAE, *TRANSCODERS):
            mod, kwargs = recipe(step)
            mod.train_and_save(**kwargs)
        else:
            cmd = next(c for s, _, _, c in BENCHMARKS if s == step)
            rc = subprocess.call([sys.executable, str(HERE / cmd[0]), *cmd[1:]])
            if rc:
                failed.append(step)
        times[step] = round(time.time() - t0, 1)
        print(f"=== {step}: {times[step]:.0f} s{' FAILED' if step in failed else ''}", flush=True)
    if times and MODEL in zoo.names():
        path = zoo.card(MODEL).folder / "pipeline_times.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**old, **times}, indent=1) + "\n")
    print("\n".join(f"{k:<32} {v:>8.0f} s" for k, v in times.items()))
    if failed:
        print("failed:", ", ".join(failed))
    return times, failed


if __name__ == "__main__":
    args = sys.argv[1:]
    force = tuple(args[args.index("--force") + 1].split(",")) if "--force" in args else ()
    if "--plan" in args:
        print("\n".join(plan(force)) or "nothing to do")
    else:
        sys.exit(1 if run(force)[1] else 0)
