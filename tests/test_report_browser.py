"""The report pages in a real browser: headless Chromium loads each page, takes a screenshot,
and a script in a copy of the page counts the images that loaded and the tables that rendered.

The committed runs (results/*/) are copied first, so that the pages are made as a user makes
them and nothing is written into the repository. Skips where no Chromium can be found
(.ci/run installs Debian's).
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from protobench.cli.main import main as protobench
from protobench.paths import RESULTS_DIR

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine (.ci/run "
                                                         "installs Debian's chromium package)")

# appended to a copy of the page: after load, open every <details> and count what rendered
CHECK = """<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const images = [...document.images];
  const tables = [...document.querySelectorAll('table')];
  const result = {
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    tables: tables.length,
    empty: tables.filter(t => t.tBodies.length === 0 || t.tBodies[0].rows.length === 0
                         || t.getBoundingClientRect().height <= 0).length,
  };
  const out = document.createElement('pre');
  out.id = 'browser-check';
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--virtual-time-budget=10000", *args],
                          capture_output=True, text=True, timeout=180)


def _check_in_browser(page: Path, tmp_path: Path) -> dict:
    probe = page.with_name(page.stem + "-probe.html")
    probe.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    dom = _chromium("--dump-dom", probe.as_uri())
    match = re.search(r'<pre id="browser-check">(.*?)</pre>', dom.stdout, re.S)
    assert match, f"the page's check did not run: {dom.stderr[-2000:]}"
    shot = tmp_path / f"{page.stem}.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri())
    assert shot.is_file(), f"no screenshot of {page}"
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 5, f"the screenshot of {page} is blank"
    return json.loads(match.group(1).replace("&quot;", '"'))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Copies of the committed runs, without their per-pair arrays."""
    root = tmp_path_factory.mktemp("results")
    for run in sorted(RESULTS_DIR.glob("*/summary.csv")):
        shutil.copytree(run.parent, root / run.parent.name, ignore=shutil.ignore_patterns("parts"))
    if not any(root.iterdir()):
        pytest.skip("no committed run under results/")
    return root


def test_the_headline_page_renders_every_image_and_table(runs, tmp_path):
    assert protobench(["report", str(runs / "headline")]) == 0
    page = runs / "headline" / "report.html"
    check = _check_in_browser(page, tmp_path)
    figures = len(list((runs / "headline" / "figures").glob("*.png")))
    assert check["images"] == figures > 0 and check["broken"] == []
    assert check["tables"] == 2 and check["empty"] == 0    # the compact table, every metric


def test_the_leaderboard_and_every_run_page_render(runs, tmp_path):
    run_dirs = sorted(str(p) for p in runs.iterdir() if (p / "summary.csv").is_file())
    assert protobench(["report", "--leaderboard", *run_dirs]) == 0
    board = _check_in_browser(runs / "leaderboard.html", tmp_path)
    assert board["images"] == 0 and board["tables"] >= 1 and board["empty"] == 0
    for run_dir in run_dirs:
        check = _check_in_browser(Path(run_dir) / "report.html", tmp_path)
        assert check["broken"] == [] and check["tables"] >= 2 and check["empty"] == 0, run_dir
