"""A memory cgroup per sandbox, so that the limit holds for the kernel and every process it
starts together (an address-space rlimit alone is per process). cgroup v2 or v1; when
neither can be used, :func:`create` returns ``None`` and the rlimit is the only limit."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def _own_path(controller: str) -> str | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            if controller in ctrls.split(",") or (controller == "" and ctrls == ""):
                return path
    except OSError:
        pass
    return None


class MemoryCgroup:
    def __init__(self, path: Path, v2: bool):
        self.path, self.v2 = path, v2

    @property
    def procs(self) -> str:
        return str(self.path / "cgroup.procs")

    def oom_killed(self) -> bool:
        """Did the kernel kill a process of this sandbox for memory?"""
        try:
            if self.v2:
                events = (self.path / "memory.events").read_text()
                return any(line.split()[0] in ("oom_kill", "oom") and int(line.split()[1]) > 0
                           for line in events.splitlines())
            oom = (self.path / "memory.oom_control").read_text()
            kills = [int(line.split()[1]) for line in oom.splitlines() if line.startswith("oom_kill ")]
            return bool(kills and kills[0] > 0) or int((self.path / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError, IndexError):
            return False

    def remove(self) -> None:
        """Kill whatever is left in the group, then delete it."""
        for _ in range(50):
            try:
                pids = [int(p) for p in Path(self.procs).read_text().split()]
            except OSError:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.05)


def create(name: str, limit_mb: int) -> MemoryCgroup | None:
    """A new memory cgroup under this process's own, limited to ``limit_mb`` (no swap)."""
    limit = str(limit_mb * 1024 * 1024)
    v2_own = _own_path("")
    if (ROOT / "cgroup.controllers").exists() and v2_own is not None:
        parent = ROOT / v2_own.lstrip("/")
        try:
            if "memory" in (parent / "cgroup.controllers").read_text().split():
                path = parent / name
                path.mkdir()
                (path / "memory.max").write_text(limit)
                if (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")
                return MemoryCgroup(path, True)
        except OSError:
            pass
    own = _own_path("memory")
    base = ROOT / "memory"
    if own is not None and (base / "memory.limit_in_bytes").exists():
        path = base / own.lstrip("/") / name
        try:
            path.mkdir()
            (path / "memory.limit_in_bytes").write_text(limit)
            if (path / "memory.memsw.limit_in_bytes").exists():
                try:
                    (path / "memory.memsw.limit_in_bytes").write_text(limit)
                except OSError:
                    pass
            return MemoryCgroup(path, False)
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
    return None
