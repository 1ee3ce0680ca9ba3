"""Run time of every solution notebook, alone and beside one busy process.

    python benchmarks/notebook_runtime.py              # every week, quiet and busy
    python benchmarks/notebook_runtime.py 02 05        # some weeks
    python benchmarks/notebook_runtime.py --quiet-only

The budget (README, tests/test_notebooks.py): each solution notebook runs in <= 60 s on a quiet
2-core machine and <= 90 s with one other busy process beside it (a browser, an indexer, another
kernel). "Busy" starts one process that spins on a core for the whole run. Times are the
notebook's cells from the first to the last (the kernel's start-up, ~2 s, is printed apart).
Measure on a machine that is otherwise idle: the load average is printed before each run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUIET_BUDGET_S = 60
BUSY_BUDGET_S = 90


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def weeks(selected: list[str]) -> list[Path]:
    """Solution notebooks of the selected weeks (``02`` or ``02_induction_heads``), all by default."""
    out = []
    for folder in sorted((REPO / "solutions").iterdir()):
        if folder.is_dir() and (not selected or any(folder.name.startswith(s) for s in selected)):
            out += sorted(folder.glob("*.ipynb"))
    return out


def run_notebook(path: Path, timeout: int = 600) -> tuple[float, float]:
    """Execute a scratch copy of ``path``'s week folder; returns (kernel start s, cells s)."""
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / path.parent.name
        shutil.copytree(path.parent, work)
        nb = nbformat.read(work / path.name, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(work)}})
        t0 = time.perf_counter()
        with client.setup_kernel():
            t1 = time.perf_counter()
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weeks", nargs="*", help="week numbers or folder names (default: all)")
    ap.add_argument("--quiet-only", action="store_true", help="skip the run beside a busy process")
    ap.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.pop("MPLBACKEND", None)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    notebooks = weeks(args.weeks)
    if not notebooks:
        print(f"no solution notebooks match {args.weeks}", file=sys.stderr)
        return 2
    print(f"{os.cpu_count()} CPUs; budget: <= {QUIET_BUDGET_S} s quiet, <= {BUSY_BUDGET_S} s beside a busy process")
    print(f"{'week':32} {'mode':6} {'load':>5} {'kernel':>7} {'cells':>7}  verdict")
    over = 0
    for nb in notebooks:
        for busy in ([False] if args.quiet_only else [False, True]):
            stop, proc = None, None
            load = os.getloadavg()[0]
            if busy:
                stop = mp.Event()
                proc = mp.Process(target=_spin, args=(stop,), daemon=True)
                proc.start()
            try:
                start, cells = run_notebook(nb, args.timeout)
                budget = BUSY_BUDGET_S if busy else QUIET_BUDGET_S
                verdict = "ok" if cells <= budget else f"OVER the {budget} s budget"
                over += cells > budget
            except Exception as err:  # noqa: BLE001  (report and go on to the next week)
                start, cells, verdict = float("nan"), float("nan"), f"FAILED: {type(err).__name__}: {err}"
                over += 1
            finally:
                if proc is not None:
                    stop.set()
                    proc.join(5)
            print(f"{nb.parent.name:32} {'busy' if busy else 'quiet':6} {load:5.1f} {start:6.1f}s {cells:6.1f}s  {verdict}",
                  flush=True)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
