"""Training steps of ``attn-only-2l`` per torch thread count, alone and beside a busy process.

    python benchmarks/threads.py                 # 100 steps, threads 1 and 2, quiet and busy
    python benchmarks/threads.py --steps 30 --threads 1 2 4

"Busy" starts one other process that spins on a core for the whole measurement (what a
browser tab, an editor's indexer or another student's kernel does on a small VM). The package
picks 1 thread for its small models (``mi_course.threads``); this script shows why.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _steps(n_threads: int, steps: int) -> float:
    import torch

    from mi_course import set_threads, zoo
    from mi_course.data.induction import training_batch
    from mi_course.training.induction_recipe import CONFIG

    set_threads(n_threads)
    model = zoo.build(CONFIG, seed=0)
    assert torch.get_num_threads() == n_threads
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):  # warm-up
        loss = model(training_batch(32, CONFIG["n_ctx"], CONFIG["d_vocab"], g), return_type="loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
    t = time.perf_counter()
    for _ in range(steps):
        loss = model(training_batch(32, CONFIG["n_ctx"], CONFIG["d_vocab"], g), return_type="loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-busy", action="store_true", help="skip the run beside a busy process")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start")
    for busy in ([False] if args.no_busy else [False, True]):
        stop, proc = None, None
        if busy:
            stop = mp.Event()
            proc = mp.Process(target=_spin, args=(stop,), daemon=True)
            proc.start()
        try:
            for n in args.threads:
                secs = _steps(n, args.steps)
                print(f"{'busy neighbour' if busy else 'alone':>14}: {n} thread(s): {args.steps} steps in "
                      f"{secs:6.1f} s ({secs / args.steps * 100:5.1f} s per 100 steps)", flush=True)
        finally:
            if proc is not None:
                stop.set()
                proc.join(5)


if __name__ == "__main__":
    main()
