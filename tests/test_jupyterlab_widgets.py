"""The live step viewer where students use it: a real JupyterLab, driven in Chromium by Playwright.

For every chapter with a live viewer: start ``jupyter lab`` on 127.0.0.1 (random port and token,
its own settings folder, stopped by the test), open a copy of the chapter, run all cells, then move
the step slider, switch the task, go back to a cached task, change sigma_y and the seed -- checking
that the picture and the caption change each time. How long each update takes is printed and
written to ``_build/browser-artefacts/jupyterlab-timings.json`` (a report, not an assertion).
Also checked (issue #13 §4): titles drawn with the panels (the picture is never stretched), controls
usable at 1024 px, the static viewer's first frame valid, steps numbered alike in both viewers.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from browser import ARTEFACTS, ROOT, chromium_path, offline_browser

pytestmark = pytest.mark.slow  # make test runs it, make check skips it

LIVE_CHAPTERS = ["08-ddnm", "09-ddnm-plus"]
TIMINGS: dict = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    chromium_path()  # skip (or fail in CI) before starting anything
    work = tmp_path_factory.mktemp("lab")
    for ch in LIVE_CHAPTERS:
        shutil.copy(ROOT / "book" / f"{ch}.ipynb", work)
    settings = work / ".settings"  # render every cell (no windowing); no news / update checks
    for rel, value in (
        ("@jupyterlab/notebook-extension/tracker.jupyterlab-settings", {"windowingMode": "none"}),
        (
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
            {"fetchNews": "false", "checkForUpdates": False},
        ),
    ):
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTER_CONFIG_DIR=str(work / ".config"),
        PYTHONPATH=str(ROOT),
        TQDM_DISABLE="1",
    )
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            "--ServerApp.allow_root=True",
            "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError((work / "lab.log").read_text()[-2000:])
                time.sleep(1)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        (ARTEFACTS / "jupyterlab-timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")


PICTURE = """sel => { const img = document.querySelector(sel);
  if (!img || !img.complete || img.naturalWidth === 0) return null;  // a new picture is still loading
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data; let h = 0;
  for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) % 1000000007; return h; }"""


def _settled(get_pic, get_cap, old_pic, timeout=600.0, hold=0.3) -> float:
    """Seconds until the picture differs from ``old_pic``, the caption is not 'computing', and both hold
    still for ``hold`` s (the image and the caption arrive as separate messages: a faded 'computing'
    picture can show for a moment beside the old caption)."""
    t0, since, last = time.time(), None, None
    while time.time() - t0 < timeout:
        state = (get_pic(), get_cap())
        ok = state[0] != old_pic and "computing" not in state[1]
        if ok and state == last:
            if time.time() - since >= hold:
                return since - t0
        else:
            since = time.time()
        last = state if ok else None
        time.sleep(0.05)
    raise AssertionError(f"the viewer did not update within {timeout:.0f} s")


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("chapter", LIVE_CHAPTERS)
def test_live_viewer_in_jupyterlab(lab, chapter):
    base, token = lab
    t_chapter = TIMINGS.setdefault(chapter, {})
    with offline_browser(base, viewport=(1280, 900)) as page:
        # a workspace of its own, reset: no tab of another chapter (with its own widgets) is restored
        page.goto(
            f"{base}/lab/workspaces/{chapter}/tree/{chapter}.ipynb?reset&token={token}", wait_until="domcontentloaded"
        )
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_function("() => document.body.innerText.includes('Idle')", timeout=120_000)
        t0 = time.time()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        box = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator("select")).first
        box.wait_for(state="attached", timeout=900_000)
        page.wait_for_function(
            """() => Array.from(document.querySelectorAll('.jp-InputArea-prompt'))
            .every(p => !p.textContent.includes('*'))""",
            timeout=900_000,
        )
        # JupyterLab does not render cells far from the viewport: bring the viewer's cell into view
        for _ in range(20):
            box.evaluate("el => el.closest('.jp-Cell').scrollIntoView({block: 'start'})")
            if box.is_visible():
                break
            page.wait_for_timeout(500)
        box.wait_for(state="visible", timeout=60_000)
        t_chapter["run_all_cells_s"] = round(time.time() - t0, 1)
        box.evaluate("el => el.id = 'ddnm-live'")
        caption = box.locator(".widget-html-content").last
        sliders = box.locator(".widget-slider")
        img = page.locator("#ddnm-live img")

        def pic():
            for _ in range(200):  # a hash of the shown picture, once it has loaded
                h = page.evaluate(PICTURE, "#ddnm-live img")
                if h is not None:
                    return h
                time.sleep(0.05)
            raise AssertionError("the viewer's picture never finished loading")

        def cap():
            return caption.inner_text()

        # §4: steps numbered like the static viewer; titles are in the picture, which is never stretched
        n = int(sliders.nth(1).locator(".noUi-handle").get_attribute("aria-valuemax").split(".")[0])
        assert cap().startswith(f"step 1 / {n}") and "consistency" in cap(), cap()
        assert img.evaluate("i => i.getBoundingClientRect().width <= i.naturalWidth + 0.5")
        static = page.locator(".ddnm-trace img").first
        assert static.evaluate("i => i.naturalWidth") > 0 and static.get_attribute("src").startswith("data:image/png")
        assert not [p for p in page.problems if "ERR_INVALID_URL" in p]

        # the step slider: picture and caption (t, consistency) change
        old_pic, old_cap = pic(), cap()
        sliders.nth(1).locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        t_chapter["step_slider_s"] = round(_settled(pic, cap, old_pic), 3)
        assert cap().startswith(f"step 2 / {n}") and cap().split("t = ")[1] != old_cap.split("t = ")[1]

        # the task dropdown: a new run is computed and shown
        select = box.locator("select")
        tasks = select.evaluate("s => Array.from(s.options).map(o => o.value)")
        first_task, first_pic = select.input_value(), pic()
        t0 = time.time()
        select.select_option(tasks[1])
        t_chapter["task_new_run_s"] = round(_settled(pic, cap, first_pic), 3)
        new_pic = pic()

        # back to the first task: cached, shown at once, never 'computing'
        seen: list[str] = []
        page.expose_function("ddnmSeen", lambda t: seen.append(t))
        caption.evaluate("""el => new MutationObserver(() => window.ddnmSeen(el.innerText))
            .observe(el, {childList: true, subtree: true, characterData: true})""")
        select.select_option(first_task)
        t_chapter["cached_task_s"] = round(_settled(pic, cap, new_pic), 3)
        assert pic() == first_pic and not any("computing" in s for s in seen), seen

        # sigma_y and the seed: new runs
        old = pic()
        sliders.nth(0).locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        t_chapter["sigma_y_new_run_s"] = round(_settled(pic, cap, old), 3)
        old = pic()
        box.locator("input[type='number']").fill("3")
        page.keyboard.press("Enter")
        t_chapter["seed_new_run_s"] = round(_settled(pic, cap, old), 3)
        assert "consistency" in cap()

        # §4: at 1024 px the controls stay usable (the sigma_y track keeps a real width)
        page.set_viewport_size({"width": 1024, "height": 800})
        page.wait_for_timeout(300)
        track = sliders.nth(0).locator(".noUi-target").evaluate("t => t.getBoundingClientRect().width")
        t_chapter["sigma_track_px_at_1024"] = round(track)
        assert track >= 100
        assert img.evaluate("i => i.getBoundingClientRect().width <= i.naturalWidth + 0.5")
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        box.screenshot(path=str(ARTEFACTS / f"jupyterlab-{chapter}-1024.png"))
        assert not page.problems, page.problems
    _shutdown_kernels(base, token)
    print(f"\n{chapter} JupyterLab update times: {json.dumps(t_chapter)}")


def _shutdown_kernels(base: str, token: str) -> None:
    """Stop the chapter's kernel (REST API), so that the next chapter runs on free cores."""
    with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10) as r:
        kernels = json.loads(r.read())
    for k in kernels:
        urllib.request.urlopen(
            urllib.request.Request(f"{base}/api/kernels/{k['id']}?token={token}", method="DELETE"), timeout=30
        )


def test_jupyterlab_is_in_the_test_extra():
    """The README's test command installs what these tests need."""
    import tomllib

    extra = " ".join(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"])
    assert "jupyterlab" in extra and "playwright" in extra
