"""Start a student's kernel in a sandbox: no network, a private view of the file system,
an unprivileged uid, resource limits, and a pid namespace so that nothing outlives it.

Built only from util-linux tools present on every Debian/Ubuntu (``unshare``, ``mount``,
``chroot``, ``setpriv``, ``prlimit``); needs root (or CAP_SYS_ADMIN). Where a mechanism is
unavailable, :func:`probe` says so and the grader prints a loud warning.

Inside the sandbox the kernel sees only: ``/usr`` and ``/etc`` (read-only), the Python
installation and the ``mi_course`` package (read-only, at their own paths), an empty home ``/home/student``
(its working folder: the notebook's extra files are *not* there), a records folder
``/grading`` and fresh ``/tmp``, ``/dev/shm``, ``/proc``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import mi_course

HOME = "/home/student"
RECORDS = "/grading"


@dataclass
class Limits:
    """Resource limits for one student's kernel."""

    memory_mb: int = 4096  # address space (RLIMIT_AS)
    file_mb: int = 64  # largest file the kernel may write (RLIMIT_FSIZE)
    processes: int = 256  # processes + threads of the sandbox uid (RLIMIT_NPROC)
    open_files: int = 512
    tmp_mb: int = 256  # size of the private /tmp
    home_mb: int = 128  # size of the kernel's home (a tmpfs, so a kernel cannot fill the grader's disk)
    records_mb: int = 128  # size of the records folder (a tmpfs)


@dataclass
class Capabilities:
    """Which isolation mechanisms work on this machine."""

    namespaces: bool = False  # unshare --mount --net --pid --ipc --uts + chroot
    drop_user: bool = False  # setpriv to an unprivileged uid
    limits: bool = False  # prlimit
    memory_cgroup: bool = False  # one memory limit for all the sandbox's processes together
    problems: list[str] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return self.namespaces and self.drop_user and self.limits


def _ok(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@lru_cache(maxsize=1)
def probe() -> Capabilities:
    """Try each mechanism once (cached)."""
    caps = Capabilities()
    tools = {t: shutil.which(t) for t in ("unshare", "setpriv", "prlimit", "chroot", "mount")}
    missing = [t for t, p in tools.items() if p is None]
    if missing:
        caps.problems.append(f"missing tools: {', '.join(missing)} (install util-linux and coreutils)")
    if os.geteuid() != 0:
        caps.problems.append("not running as root: no namespaces, no separate uid for student kernels")
    if tools["unshare"] and tools["mount"] and os.geteuid() == 0:
        caps.namespaces = _ok([tools["unshare"], "--mount", "--net", "--pid", "--ipc", "--uts", "--fork",
                               "sh", "-c", "mount --make-rprivate / && mount -t tmpfs t /mnt"])
        if not caps.namespaces:
            caps.problems.append("unshare/mount namespaces refused (container without CAP_SYS_ADMIN?)")
    if tools["setpriv"] and os.geteuid() == 0:
        caps.drop_user = _ok([tools["setpriv"], "--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        if not caps.drop_user:
            caps.problems.append("setpriv cannot change uid")
    if caps.drop_user and not caps.namespaces:  # without a private root the uid needs access to Python itself
        argv = [tools["setpriv"], "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "-i",
                f"PYTHONPATH={_package_dir().parent}", sys.executable, "-c", "import mi_course"]
        try:
            ok = subprocess.run(argv, capture_output=True, timeout=60, cwd="/").returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if not ok:
            caps.drop_user = False
            caps.problems.append(f"an unprivileged user cannot run {sys.executable} (installed under /root?): "
                                 "student kernels run as root")
    if os.geteuid() == 0:
        from mi_course.grading import cgroups

        cg = cgroups.create(f"mi-grade-probe-{os.getpid()}", 64)
        caps.memory_cgroup = cg is not None
        if cg is not None:
            cg.remove()
        else:
            caps.problems.append("no usable memory cgroup: the memory limit holds per process, not per sandbox")
    if tools["prlimit"]:
        caps.limits = _ok([tools["prlimit"], "--fsize=1000000", "--core=0", "true"])
        if not caps.limits:
            caps.problems.append("prlimit failed")
    return caps


def warn_if_weak(caps: Capabilities) -> str | None:
    """A loud warning text when the sandbox is incomplete (``None`` when it is complete)."""
    if caps.full and not caps.problems:
        return None
    text = ("!" * 78 + "\nWARNING: the grading sandbox is INCOMPLETE on this machine:\n  - "
            + "\n  - ".join(caps.problems or ["unknown"])
            + "\nStudent code may read or change files, reach the network or outlive grading.\n"
            "Grade as root on Linux (see docs/instructors.md).\n" + "!" * 78)
    warnings.warn(text, RuntimeWarning, stacklevel=2)
    return text


def _package_dir() -> Path:
    return Path(mi_course.__file__).resolve().parent


def _python_dirs() -> list[str]:
    dirs = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    exe = os.path.realpath(sys.executable)
    dirs.add(str(Path(exe).parent.parent))
    return sorted(d for d in dirs if not d.startswith("/usr"))


def kernel_env(record_dir: str, nonce: str, threads: int = 1) -> dict[str, str]:
    """The kernel's whole environment (nothing is inherited from the grader)."""
    return {
        "HOME": HOME, "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8", "PYTHONPATH": str(_package_dir().parent), "PYTHONNOUSERSITE": "1",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/mpl", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TORCH_NUM_THREADS": str(threads),
        "JUPYTER_PLATFORM_DIRS": "1", "IPYTHONDIR": "/tmp/ipython",
        "MI_COURSE_RECORD_DIR": record_dir, "MI_COURSE_RECORD_NONCE": nonce,
    }


def _q(s: str | Path) -> str:
    return shlex.quote(str(s))


def kernel_argv(root: Path, workdir: Path, records: Path, uid: int, nonce: str, limits: Limits,
                caps: Capabilities | None = None, threads: int = 1, cgroup_procs: str | None = None) -> list[str]:
    """The command that starts one sandboxed ipykernel reading ``<workdir>/kernel.json``.

    ``root`` is an empty folder (the sandbox's ``/`` is a tmpfs mounted on it inside the new
    mount namespace, invisible outside). The kernel is pid 1 of its pid namespace: when it
    dies, or the returned process is killed, every process it started dies with it.
    """
    caps = caps or probe()
    py = sys.executable
    if caps.namespaces:
        env = kernel_env(RECORDS, nonce, threads)
        conn = f"{HOME}/kernel.json"
    else:  # no private root: paths stay as on the host
        env = kernel_env(str(records), nonce, threads)
        env["HOME"] = str(workdir)
        conn = str(workdir / "kernel.json")
    cmd = ["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()], py, "-m", "ipykernel_launcher",
           "-f", conn, "--HistoryManager.enabled=False"]
    if caps.drop_user:
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
               "--bounding-set=-all", "--inh-caps=-all", "--", *cmd]
    if caps.limits:
        mb = 1024 * 1024
        cmd = ["prlimit", f"--as={limits.memory_mb * mb}", f"--fsize={limits.file_mb * mb}",
               f"--nproc={limits.processes}", f"--nofile={limits.open_files}", "--core=0", "--", *cmd]
    join = f"echo 0 > {_q(cgroup_procs)}" if cgroup_procs else None
    if not caps.namespaces:
        return ["/bin/sh", "-c", f'{join}\nexec "$@"', "sandbox", *cmd] if join else cmd
    log = f"{HOME}/kernel.log"
    lines = mount_script(root, workdir, records, limits)
    if join:
        lines.insert(1, join)
    lines.append(f'cd "$R" && exec chroot "$R" /bin/sh -c {_q("cd " + HOME + " && exec " + shlex.join(cmd) + f" >{log} 2>&1")}')
    return ["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child=SIGKILL",
            "/bin/sh", "-c", "\n".join(lines)]


def mount_script(root: Path, workdir: Path, records: Path, limits: Limits) -> list[str]:
    """Shell lines that build the sandbox's file system on ``root`` (run inside new mount and
    pid namespaces, as root)."""
    lines = ["set -e", "mount --make-rprivate /", f"R={_q(root)}",
             'mount -t tmpfs -o mode=755,size=16m sandbox "$R"']
    for name in ("bin", "lib", "lib32", "lib64", "sbin", "libx32"):
        p = Path("/") / name
        if p.is_symlink():
            lines.append(f'ln -s {_q(os.readlink(p))} "$R/{name}"')
        elif p.is_dir():
            lines += _bind(str(p))
    # The private /tmp and /dev/shm come first, so that a Python or a course installed under
    # /tmp (a CI checkout, say) is bound on top of them instead of being hidden by them.
    lines += ['mkdir -p "$R/tmp" "$R/dev/shm" "$R/proc"',
              f'mount -t tmpfs -o mode=1777,size={limits.tmp_mb}m,nosuid,nodev tmp "$R/tmp"',
              f'mount -t tmpfs -o mode=1777,size={limits.tmp_mb}m,nosuid,nodev shm "$R/dev/shm"',
              'mount -t proc -o nosuid,nodev,noexec proc "$R/proc"']
    for d in ["/usr", "/etc", *_python_dirs()]:
        lines += _bind(d)
    lines += _bind(str(_package_dir()))  # at its own path: modules imported before the sandbox still resolve
    lines += _bind(str(workdir), HOME, ro=False)
    lines += _bind(str(records), RECORDS, ro=False)
    for dev in ("null", "zero", "random", "urandom", "full"):
        lines += [f'touch "$R/dev/{dev}"', f'mount --bind /dev/{dev} "$R/dev/{dev}"']
    return lines


def _bind(src: str, dst: str | None = None, ro: bool = True) -> list[str]:
    dst = dst or src
    out = [f'mkdir -p "$R"{_q(dst)}', f'mount --bind {_q(src)} "$R"{_q(dst)}']
    if ro:
        out.append(f'mount -o remount,bind,ro,nosuid,nodev "$R"{_q(dst)}')
    return out


def mount_tmpfs(path: Path, size_mb: int) -> bool:
    """Mount a size-limited tmpfs on ``path`` (host side); ``False`` when that is not possible."""
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=700,nosuid,nodev",
                               "mi-grade", str(path)], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def unmount_under(path: Path) -> None:
    """Unmount every mount point at or below ``path`` (deepest first)."""
    base = os.path.realpath(path)
    try:
        with open("/proc/self/mounts") as fh:
            points = [line.split()[1].encode().decode("unicode_escape") for line in fh]
    except OSError:
        return
    for mp in sorted((m for m in points if m == base or m.startswith(base + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True, timeout=20)
