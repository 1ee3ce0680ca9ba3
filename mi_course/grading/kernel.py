"""Run code cells in one sandboxed kernel, from the trusted grader process.

The grader talks to the kernel over Unix sockets in the submission's work folder (the kernel
has no network at all). Outputs are capped, a cell that runs past its timeout is interrupted,
and a kernel that ignores the interrupt is killed together with everything it started.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq
from jupyter_client.blocking.client import BlockingKernelClient

from mi_course.grading import sandbox

MAX_MESSAGE = 8 * 1024 * 1024  # bytes: larger messages from the kernel are dropped by zmq
MAX_OUTPUT_CHARS = 50_000  # per cell, kept in the graded notebook


@dataclass
class CellRun:
    """What happened when one cell ran."""

    status: str  # ok | error | timeout | dead | not_run
    outputs: list[dict] = field(default_factory=list)
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0
    truncated: bool = False


class KernelDied(Exception):
    pass


class SandboxedKernel:
    """One student's kernel. Use as a context manager; :meth:`close` kills everything."""

    def __init__(self, workdir: Path, records: Path, root: Path, uid: int, nonce: str,
                 limits: sandbox.Limits, caps: sandbox.Capabilities, threads: int = 1, zygote=None):
        self.workdir, self.records, self.root = workdir, records, root
        self.uid, self.nonce, self.limits, self.caps, self.threads = uid, nonce, limits, caps, threads
        self.zygote = zygote  # a mi_course.grading.zygote.Zygote: fork warm kernels instead of exec
        self.proc = None  # subprocess.Popen or zygote.ForkedProcess
        self.cgroup = None
        self.oom_killed = False  # set by close(): the memory cgroup killed a process
        self.kc: BlockingKernelClient | None = None
        self.ctx = zmq.Context()
        self.ctx.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        self.ctx.setsockopt(zmq.LINGER, 0)

    # -- life cycle ------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        key = secrets.token_hex(16)
        ports = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
        inside = sandbox.HOME if self.caps.namespaces else str(self.workdir)
        info = {"transport": "ipc", "ip": f"{inside}/k", "key": key, "signature_scheme": "hmac-sha256",
                "kernel_name": "", **ports}
        (self.workdir / "kernel.json").write_text(json.dumps(info))
        if self.caps.drop_user:
            for p in (self.workdir, self.records, self.workdir / "kernel.json"):
                os.chown(p, self.uid, self.uid)
        if self.caps.memory_cgroup:
            from mi_course.grading import cgroups

            self.cgroup = cgroups.create(f"mi-grade-{self.nonce}", self.limits.memory_mb)
        procs = self.cgroup.procs if self.cgroup else None
        if self.zygote is not None:
            from dataclasses import asdict

            from mi_course.grading.zygote import ForkedProcess

            req = {"root": str(self.root), "workdir": str(self.workdir), "home": sandbox.HOME, "uid": self.uid,
                   "limits": asdict(self.limits), "env": sandbox.kernel_env(sandbox.RECORDS, self.nonce, self.threads),
                   "connection_file": f"{sandbox.HOME}/kernel.json", "cgroup_procs": procs,
                   "mount_script": sandbox.mount_script(self.root, self.workdir, self.records, self.limits)}
            self.proc = ForkedProcess(self.zygote.spawn(req))
        else:
            argv = sandbox.kernel_argv(self.root, self.workdir, self.records, self.uid, self.nonce,
                                       self.limits, self.caps, self.threads, procs)
            log = open(self.workdir.parent / "sandbox.log", "wb")
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.workdir,
                                         start_new_session=True)
            log.close()
        kc = BlockingKernelClient(context=self.ctx)
        kc.load_connection_info({**info, "ip": str(self.workdir / "k")})
        deadline = time.monotonic() + timeout
        while not all((self.workdir / f"k-{p}").exists() for p in ports.values()):
            if self.proc.poll() is not None:
                raise KernelDied(f"kernel exited at start (code {self.proc.returncode}): {self._log_tail()}")
            if time.monotonic() > deadline:
                raise KernelDied("kernel did not start in time")
            time.sleep(0.02)
        kc.start_channels()
        self.kc = kc
        while True:
            try:
                kc.kernel_info(reply=True, timeout=1)
                break
            except (TimeoutError, queue.Empty):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise KernelDied(f"kernel did not answer: {self._log_tail()}") from None

    def _log_tail(self) -> str:
        text = ""
        for f in (self.workdir.parent / "sandbox.log", self.workdir / "kernel.log"):
            try:
                with open(f, "rb") as fh:
                    text += fh.read()[-800:].decode(errors="replace")
            except OSError:
                pass
        return text.strip()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        """Kill the kernel and every process in its sandbox."""
        if self.kc is not None:
            try:
                self.kc.stop_channels()
            except Exception:  # noqa: BLE001
                pass
        if self.proc is not None and self.proc.poll() is None:
            for kill in (lambda: os.killpg(self.proc.pid, signal.SIGKILL), self.proc.kill):
                try:
                    kill()
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.proc.poll()
        if self.cgroup is not None:
            self.oom_killed = self.oom_killed or self.cgroup.oom_killed()
            self.cgroup.remove()
            self.cgroup = None
        self.ctx.destroy(linger=0)

    def __enter__(self) -> "SandboxedKernel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- running cells ---------------------------------------------------------------------
    def run(self, code: str, timeout: float, grace: float = 3.0) -> CellRun:
        """Run ``code``; interrupt after ``timeout`` s, kill the kernel ``grace`` s later."""
        t0 = time.monotonic()
        if not self.alive():
            return CellRun("dead")
        msg_id = self.kc.execute(code, silent=False, store_history=True, allow_stdin=False, stop_on_error=False)
        run = CellRun("ok")
        chars = 0
        deadline = t0 + timeout
        interrupted = False
        replied: float | None = None
        while True:
            now = time.monotonic()
            if now > deadline:
                if interrupted:
                    self.close()
                    run.status, run.seconds = "timeout", time.monotonic() - t0
                    run.ename = "killed"
                    return run
                self._interrupt()
                interrupted, deadline = True, now + grace
                run.status = "timeout"
            if replied is None:
                replied = self._reply(msg_id, run)
            elif now - replied > 1.0:  # the reply came but iopub's idle was lost: a message too big was dropped
                run.truncated = True
                break
            try:
                msg = self.kc.get_iopub_msg(timeout=min(0.2, max(deadline - now, 0.01)))
            except queue.Empty:
                if not self.alive():
                    run.status, run.seconds = "dead", time.monotonic() - t0
                    return run
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                break
            if kind == "error":
                if run.status == "ok":
                    run.status = "error"
                run.ename, run.evalue = str(content.get("ename", ""))[:200], str(content.get("evalue", ""))[:2000]
                out = {"output_type": "error", "ename": run.ename, "evalue": run.evalue,
                       "traceback": [str(t)[:5000] for t in content.get("traceback", [])[:50]]}
            elif kind == "stream":
                out = {"output_type": "stream", "name": content.get("name", "stdout"), "text": str(content.get("text", ""))}
            elif kind in ("execute_result", "display_data"):
                data = {k: v for k, v in content.get("data", {}).items() if isinstance(v, str)}
                out = {"output_type": kind, "data": data, "metadata": {}}
                if kind == "execute_result":
                    out["execution_count"] = content.get("execution_count")
            else:
                continue
            size = len(json.dumps(out))
            if chars + size > MAX_OUTPUT_CHARS:
                run.truncated = True
                continue
            chars += size
            run.outputs.append(out)
        run.seconds = time.monotonic() - t0
        if run.truncated:
            run.outputs.append({"output_type": "stream", "name": "stderr",
                                "text": "\n[grader: output truncated or dropped (too large)]\n"})
        return run

    def _reply(self, msg_id: str, run: CellRun) -> float | None:
        """Time the execute_reply arrived (``None`` if not yet); notes an error status."""
        try:
            while True:
                msg = self.kc.get_shell_msg(timeout=0)
                if msg.get("parent_header", {}).get("msg_id") == msg_id:
                    content = msg.get("content", {})
                    if content.get("status") == "error" and run.status == "ok":
                        run.status = "error"
                        run.ename = run.ename or str(content.get("ename", ""))[:200]
                        run.evalue = run.evalue or str(content.get("evalue", ""))[:2000]
                    return time.monotonic()
        except queue.Empty:
            return None

    def _interrupt(self) -> None:
        try:
            msg = self.kc.session.msg("interrupt_request", {})
            self.kc.control_channel.send(msg)
        except Exception:  # noqa: BLE001
            pass
