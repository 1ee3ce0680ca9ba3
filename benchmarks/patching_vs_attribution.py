"""Activation patching vs attribution patching on ``ioi-lm``: time, speed ratio, agreement.

    python benchmarks/patching_vs_attribution.py [--n 32] [--template 0] [--threads 1]

Runs the full activation-patching sweep (residual stream, attention and MLP outputs by layer x
position; every head's z, q, k, v and pattern by layer x position x head) and attribution
patching on the same activations, and prints, per activation and in total: the time of each,
the speed ratio, and the Pearson correlation of their results. Offline, CPU.
"""

from __future__ import annotations

import argparse
import time

import torch

from mi_course import zoo
from mi_course.data import ioi
from mi_course.methods import activation_patching as ap
from mi_course.methods import attribution_patching as atp
from mi_course.methods.metrics import ioi_metric

SWEEP = [("resid_pre", True), ("attn_out", True), ("mlp_out", True),
         ("z", True), ("q", True), ("k", True), ("v", True), ("pattern", True)]


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def run(n: int = 32, template: int = 0, progress: bool = True) -> list[dict]:
    model = zoo.load("ioi-lm")
    ds = ioi.make_ioi(n, seed=0, templates=template)
    abc = ds.abc(seed=1)
    metric = ioi_metric(ds)
    rows = []
    for activation, by_pos in SWEEP:
        t0 = time.perf_counter()
        act = ap.activation_patching(model, ds.tokens, abc.tokens, metric, activation, by_pos, progress=progress)
        t1 = time.perf_counter()
        att = atp.attribution_patching(model, ds.tokens, abc.tokens, metric, activation, by_pos)
        t2 = time.perf_counter()
        rows.append({"activation": activation, "n_patches": act.numel(), "patching_s": t1 - t0,
                     "atp_s": t2 - t1, "corr": corr(act, att), "act": act, "atp": att})
    t0 = time.perf_counter()
    together = atp.attribution_patching_many(model, ds.tokens, abc.tokens, metric, SWEEP)
    t_all = time.perf_counter() - t0
    for r in rows:
        assert torch.allclose(together[r["activation"]], r["atp"], atol=1e-4)
    return rows, t_all


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=32, help="prompts per batch")
    p.add_argument("--template", type=int, default=0, help="template index (one template: aligned positions)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows, t_all = run(args.n, args.template, progress=not args.no_progress)
    print(f"ioi-lm, {args.n} IOI prompts (template {args.template}) vs their ABC corruption, metric = logit diff, "
          f"{args.threads} thread(s)")
    print(f"{'activation':<10} {'patches':>8} {'patching s':>11} {'AtP s':>8} {'speed-up':>9} {'corr':>7}")
    for r in rows:
        print(f"{r['activation']:<10} {r['n_patches']:>8} {r['patching_s']:>11.2f} {r['atp_s']:>8.3f} "
              f"{r['patching_s'] / r['atp_s']:>8.0f}x {r['corr']:>7.3f}")
    tp = sum(r["patching_s"] for r in rows)
    ta = sum(r["atp_s"] for r in rows)
    all_act = torch.cat([r["act"].flatten() for r in rows])
    all_atp = torch.cat([r["atp"].flatten() for r in rows])
    print(f"{'total':<10} {sum(r['n_patches'] for r in rows):>8} {tp:>11.2f} {ta:>8.3f} {tp / ta:>8.0f}x "
          f"{corr(all_act, all_atp):>7.3f}")
    print(f"AtP of every activation above in one go (2 forward + 1 backward pass): {t_all:.3f} s, "
          f"{tp / t_all:.0f}x faster than the activation-patching sweep")


if __name__ == "__main__":
    main()
