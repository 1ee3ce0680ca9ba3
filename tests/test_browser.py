"""End to end in a real browser: JupyterLab on loopback, driven by headless Chromium.

Opens a scratch copy of week 00's solution notebook (the toolkit tour), runs all cells from the Run menu,
checks that the AttentionExplorer widget rendered and that it responds when a control
changes, and saves screenshots under the test's tmp_path (and, if MI_COURSE_ARTIFACTS
is set, copies them there).

Needs Debian's ``chromium`` (/usr/bin/chromium, or MI_COURSE_CHROMIUM) and the Python
``playwright`` package; Playwright's own browser download is not used. Skips with the
reason where either is missing or the browser cannot start.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "solutions" / "00_toolkit_tour" / "00_toolkit_tour.ipynb"
CHROMIUM = Path(os.environ.get("MI_COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Seconds for the whole test; the notebook itself runs in about 10 s on CPU.
BUDGET_S = int(os.environ.get("MI_COURSE_BROWSER_BUDGET", 240))

pytestmark = [pytest.mark.slow, pytest.mark.alone, pytest.mark.timeout(BUDGET_S + 60)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_browser():
    """Skip (with the reason) unless playwright imports and a Chromium binary is there."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; "
                    "or set MI_COURSE_CHROMIUM)")
    return sync_api


def _launch_browser(pw):
    try:
        return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
    except Exception as exc:  # noqa: BLE001 - any launch failure means: no usable browser here
        pytest.skip(f"Chromium at {CHROMIUM} did not start: {str(exc).splitlines()[0]}")


@pytest.fixture
def jupyter_lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a scratch dir with the notebook; yields (base url, token)."""
    _require_browser()  # no server start where the test would skip anyway
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        pytest.skip(f"no jupyter next to {sys.executable}")
    work = tmp_path / "lab"
    work.mkdir()
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:  # start from blank prompts, so "every cell numbered" means "every cell ran"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, work / NOTEBOOK.name)
    # Never ask about (or fetch) Jupyter news: the prompt would sit over the notebook.
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    # Render every cell: JupyterLab 4 windows long notebooks (only cells near the viewport are in
    # the page), which would hide cells from the counts and the "every cell ran" wait below.
    tracker = tmp_path / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        # the kernel imports this checkout's mi_course, whatever the venv has installed
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    env.pop("MPLBACKEND", None)  # conftest sets Agg; the kernel should use its inline backend
    log = open(tmp_path / "jupyter.log", "w")
    cmd = [
        str(jupyter), "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root; jupyter refuses that otherwise
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{(tmp_path / 'jupyter.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer on {base} within 60 s:\n"
                            f"{(tmp_path / 'jupyter.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _kernel_idle(base: str, token: str) -> bool:
    """The server's view: the notebook has a session whose kernel has started and is idle."""
    try:
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as r:
            sessions = json.load(r)
    except OSError:
        return False
    return any(s.get("path", "").endswith(NOTEBOOK.name) and (s.get("kernel") or {}).get("execution_state") == "idle"
               for s in sessions)


def _save(page, tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    page.screenshot(path=str(out), full_page=False)
    dest = os.environ.get("MI_COURSE_ARTIFACTS")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(dest) / name)
    return out


def test_week00_notebook_runs_and_widget_responds_in_chromium(jupyter_lab, tmp_path):
    sync_api = _require_browser()
    start = time.monotonic()

    def left_ms() -> float:
        left = BUDGET_S - (time.monotonic() - start)
        assert left > 0, f"browser test ran past its {BUDGET_S} s budget"
        return left * 1000

    base, token = jupyter_lab
    with sync_api.sync_playwright() as pw:
        browser = _launch_browser(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", timeout=60_000)
            # The notebook panel with its cells, and a kernel that has started (the toolbar's
            # indicator says "idle" before any kernel exists, so ask the server as well).
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            while not _kernel_idle(base, token):
                assert time.monotonic() - start < 120, "the notebook's kernel did not start within 120 s"
                time.sleep(1)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
            code_prompts = ".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt"
            n_code = page.locator(code_prompts).count()
            assert n_code > 10, f"expected the week-00 notebook's code cells, found {n_code}"

            # Run > Run All Cells, from the menu bar as a student would. If the first cell has not
            # started 30 s later (the page had not yet attached to the kernel), ask once more.
            first_prompt = page.locator(code_prompts).first
            for attempt in range(2):
                page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
                page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
                try:
                    sync_api.expect(first_prompt).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=30_000)
                    break
                except AssertionError:
                    if attempt:
                        raise AssertionError("Run > Run All Cells did not start the first cell") from None
                    print("\nRun All Cells: the first cell did not start within 30 s; asking again")

            # Wait until every code cell has an execution count (none pending "[*]" or blank).
            # A cell that raises stops Run All, so stop waiting at the first traceback too.
            page.wait_for_function(
                """sel => [...document.querySelectorAll(sel)].every(p => /\\[\\d+\\]/.test(p.textContent))
                       || [...document.querySelectorAll(".jp-OutputArea-output")].some(
                           o => o.textContent.includes("Traceback (most recent call last)"))""",
                arg=code_prompts, timeout=left_ms(), polling=1000,
            )
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
            errors = page.locator(".jp-NotebookPanel .jp-OutputArea-output", has_text="Traceback (most recent call last)")
            assert errors.count() == 0, f"a cell raised:\n{(errors.first.text_content() or '')[-3000:]}"

            # The AttentionExplorer widget: its controls and its HTML grid.
            widget = page.locator(".jp-NotebookPanel .jupyter-widgets.widget-vbox").filter(
                has=page.locator(".widget-toggle-buttons", has_text="tokens")).first
            widget.wait_for(timeout=30_000)
            widget.locator(".mic-att").wait_for(timeout=30_000)
            widget.scroll_into_view_if_needed()
            assert widget.locator(".widget-slider").count() >= 3, "layer/head/query sliders missing"
            assert widget.locator(".widget-toggle-buttons button").count() == 2, "grid/tokens toggle missing"
            grid_html = widget.locator(".mic-att").inner_html()
            _save(page, tmp_path, "browser-widget-grid.png")

            # Change the head slider with the keyboard: the grid must change.
            head = widget.locator(".widget-slider").filter(has_text="head").locator(".ui-slider-handle, .noUi-handle")
            head.first.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "([el, before]) => el.querySelector('.mic-att') && el.querySelector('.mic-att').innerHTML !== before",
                arg=[widget.element_handle(), grid_html], timeout=30_000,
            )
            readout = widget.locator(".widget-slider").filter(has_text="head").locator(".widget-readout")
            assert readout.first.inner_text().strip() == "1", "head slider did not move to 1"

            # Click the "tokens" view: the grid gives way to coloured tokens.
            widget.locator(".widget-toggle-buttons button", has_text="tokens").click()
            widget.locator(".mic-tok span").first.wait_for(timeout=30_000)
            assert widget.locator(".mic-att").count() == 0, "grid still shown in tokens view"
            assert widget.locator(".mic-tok span").count() > 10, "too few tokens drawn"
            shot = _save(page, tmp_path, "browser-widget-tokens.png")
            assert shot.stat().st_size > 10_000
            print(f"\nbrowser test: {time.monotonic() - start:.0f} s; screenshots in {tmp_path}")
        except Exception:
            _save(page, tmp_path, "browser-failure.png")  # what the page showed when it went wrong
            raise
        finally:
            browser.close()
