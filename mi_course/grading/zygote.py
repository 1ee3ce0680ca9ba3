"""A warm start for sandboxed kernels: one trusted process imports torch, ipykernel and the
checkers once, then forks a fresh kernel per submission and sandboxes the child (new
namespaces, chroot, resource limits, unprivileged uid) before any student code runs.

This saves the seconds each kernel would spend importing torch. The zygote never runs
student code; its children start from a copy of its pristine memory. The grader talks to it
over a pipe (one JSON line per request); ``python -m mi_course.grading.zygote`` runs it.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _child(req: dict) -> None:
    """In the forked child: enter new namespaces, fork the kernel as pid 1, wait for it."""
    libc = _libc()
    os.setsid()
    if req.get("cgroup_procs"):  # before anything else: every later process is inside the memory limit
        with open(req["cgroup_procs"], "w") as fh:
            fh.write("0")
    if libc.unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET) != 0:
        os._exit(70)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote ignores SIGCHLD; this process must wait
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    _kernel(req, libc)


def _kernel(req: dict, libc) -> None:
    """pid 1 of the new pid namespace: build the file system, drop everything, run ipykernel."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    log = os.open(os.path.join(req["workdir"], "kernel.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    if subprocess.run(["/bin/sh", "-c", "\n".join(req["mount_script"])]).returncode != 0:
        os._exit(71)
    os.chroot(req["root"])
    os.chdir(req["home"])
    lim = req["limits"]
    mb = 1024 * 1024
    for what, value in [(resource.RLIMIT_AS, lim["memory_mb"] * mb), (resource.RLIMIT_FSIZE, lim["file_mb"] * mb),
                        (resource.RLIMIT_NPROC, lim["processes"]), (resource.RLIMIT_NOFILE, lim["open_files"]),
                        (resource.RLIMIT_CORE, 0)]:
        resource.setrlimit(what, (value, value))
    uid = req["uid"]
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)  # all capabilities are gone from here on
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if os.getuid() != uid or os.geteuid() != uid:
        os._exit(72)
    os.environ.clear()
    os.environ.update(req["env"])
    sys.argv = ["ipykernel_launcher"]
    import torch

    torch.set_num_threads(int(req["env"].get("OMP_NUM_THREADS", "1")))
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(["-f", req["connection_file"], "--HistoryManager.enabled=False"])
    app.start()
    os._exit(0)


def _warm_up(models: list[str]) -> None:
    """Do the slow one-time work of a notebook's first cell (imports, first build of the week's
    zoo models) here, once. Nothing student-visible is kept: the models are discarded."""
    import importlib

    for mod in ("matplotlib.pyplot", "mi_course.viz", "mi_course.methods", "mi_course.data"):
        try:
            importlib.import_module(mod)
        except Exception:  # noqa: BLE001
            pass
    try:
        from mi_course import zoo

        for name in models:
            if name in zoo.names():
                zoo.load(name)
    except Exception:  # noqa: BLE001
        pass


def serve() -> None:
    """Read requests from stdin; fork a sandboxed kernel for each; answer with its pid."""
    os.environ["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")
    import torch  # noqa: F401  (the point: import once, before any fork)
    import ipykernel.kernelapp  # noqa: F401
    from mi_course.grading import records

    torch.set_num_threads(1)  # no OpenMP pool before fork
    records.exercises()  # imports every week's checkers (and what they import)
    _warm_up([m for m in (sys.argv[1] if len(sys.argv) > 1 else "").split(",") if m])
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                _child(req)
            finally:
                os._exit(75)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()


class Zygote:
    """The grader's handle on a zygote process (thread-safe)."""

    def __init__(self, models: list[str] | None = None):
        self.proc = subprocess.Popen([sys.executable, "-m", "mi_course.grading.zygote", ",".join(models or [])],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                          "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                          "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        self.lock = threading.Lock()
        line = self.proc.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            self.close()
            raise RuntimeError("the kernel zygote did not start")

    def spawn(self, req: dict) -> int:
        with self.lock:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the kernel zygote died")
        return int(json.loads(line)["pid"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class ForkedProcess:
    """A Popen-like handle on a zygote's child (for alive checks and kill)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        try:
            with open(f"/proc/{self.pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                self.returncode = -1
        except (OSError, IndexError):
            self.returncode = -1
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float | None = None) -> int:
        import time

        end = time.monotonic() + (timeout or 1e9)
        while self.poll() is None and time.monotonic() < end:
            time.sleep(0.01)
        return self.returncode if self.returncode is not None else -1


if __name__ == "__main__":
    serve()
