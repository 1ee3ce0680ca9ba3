"""bootstrap.py's JupyterLab launch: PATH, root, no news pop-up, student vs instructor tools.

What can be checked without a browser: the command and environment bootstrap builds, and a real
JupyterLab server started with them (its settings, page config and server extensions).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.alone  # real JupyterLab servers: bootstrap.py test runs this file first, alone

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bootstrap():
    spec = importlib.util.spec_from_file_location("bootstrap_under_test", REPO / "bootstrap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ci_runs_the_readme_command():
    assert (REPO / ".ci" / "run").read_text().strip().endswith("exec python3 bootstrap.py test")


def test_the_test_command_runs_timed_tests_alone_then_the_rest_in_parallel(bootstrap):
    first, rest = bootstrap.test_commands([], cpus=2)
    assert first[-2:] == ["-m", "alone"]
    assert rest[-6:] == ["-m", "not alone", "-n", "2", "--dist", "loadfile"]
    assert bootstrap.test_commands([], cpus=1)[1][-2:] == ["-m", "not alone"]  # no workers on one CPU
    assert bootstrap.test_commands(["-k", "week02"], cpus=2) == [first[:-2] + ["-k", "week02"]]


def test_venv_bin_first_on_path_and_root_allowed(bootstrap):
    argv, env, config = bootstrap.lab_command(False, ["--port=9999"], euid=0,
                                              environ={"PATH": f"/usr/bin{os.pathsep}{bootstrap.BIN}"})
    assert env["PATH"].split(os.pathsep) == [str(bootstrap.BIN), "/usr/bin"]  # mi-course's bin first, once
    assert env["VIRTUAL_ENV"] == str(bootstrap.VENV)
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0] == str(config)
    assert "--allow-root" in argv and argv[-1] == "--port=9999"
    assert "notebooks/" in argv and "--LabApp.news_url=None" in argv
    argv, _, _ = bootstrap.lab_command(False, [], euid=1000, environ={"PATH": "/usr/bin"})
    assert "--allow-root" not in argv


def test_student_and_instructor_configs(bootstrap, tmp_path):
    student = bootstrap.lab_config(instructor=False)
    teacher = bootstrap.lab_config(instructor=True)
    hidden = student["labconfig/page_config.json"]["disabledExtensions"]
    assert {"@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader"} <= set(hidden)
    assert "@jupyter/nbgrader:validate-assignment" not in hidden  # students keep Validate
    assert teacher["labconfig/page_config.json"]["disabledExtensions"] == {}
    ext = "nbgrader.server_extensions.formgrader"
    assert student["jupyter_server_config.json"]["ServerApp"]["jpserver_extensions"][ext] is False
    assert teacher["jupyter_server_config.json"]["ServerApp"]["jpserver_extensions"][ext] is True
    for cfg in (student, teacher):
        news = cfg["labconfig/default_setting_overrides.json"]["@jupyterlab/apputils-extension:notification"]
        assert news["fetchNews"] == "false"
    folder = bootstrap.write_lab_config(tmp_path / "cfg", instructor=False)
    assert json.loads((folder / "labconfig" / "page_config.json").read_text())["disabledExtensions"] == hidden


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError:  # not listening yet
        return 0, ""


@pytest.mark.slow
@pytest.mark.parametrize("instructor", [False, True], ids=["student", "instructor"])
def test_a_real_lab_server_gets_the_setup(bootstrap, tmp_path, instructor):
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        pytest.skip(f"no jupyter next to {sys.executable}")
    argv, env, _ = bootstrap.lab_command(instructor, [], environ=dict(os.environ))
    config = bootstrap.write_lab_config(tmp_path / "config-path", instructor)
    env["JUPYTER_CONFIG_PATH"] = str(config)
    port, token = _free_port(), secrets.token_hex(16)
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "home-config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    flags = [a for a in argv[4:] if a.startswith("--")]  # bootstrap's own flags (news, root)
    cmd = [str(jupyter), "lab", "--no-browser", *flags, "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
           f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'ws'}"]
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while _get(f"{base}/api/status?token={token}")[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        status, body = _get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}")
        assert status == 200, status
        plugin = json.loads(body)  # no user setting here, so the (overridden) schema default applies
        assert plugin["settings"].get("fetchNews", plugin["schema"]["properties"]["fetchNews"]["default"]) == "false"
        status, page = _get(f"{base}/lab?token={token}")
        cfg = json.loads(re.search(r'id="jupyter-config-data"[^>]*>\s*(\{.*?\})\s*</script>', page, re.S).group(1))
        disabled = set(cfg.get("disabledExtensions", []))
        assert ("@jupyter/nbgrader:create-assignment" in disabled) is not instructor
        assert ("@jupyter/nbgrader:formgrader" in disabled) is not instructor
        assert "@jupyter/nbgrader:validate-assignment" not in disabled
        formgrader = _get(f"{base}/formgrader?token={token}")[0]
        assert (formgrader == 404) is not instructor, formgrader
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
