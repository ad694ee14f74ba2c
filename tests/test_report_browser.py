"""The comparison report, opened in a real browser (headless Chromium) as a reader would open it."""

import json
import re
import shutil
import subprocess

import pytest

from sk_mnist.baselines import make_baseline
from sk_mnist.report import compare, write_report

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium here: the report is not checked in a browser"
)

#: Measures the page once it has loaded, and writes what it found into the page.
PROBE = """<script>
addEventListener("load", () => {
  const ids = new Set([...document.querySelectorAll("[id]")].map((element) => element.id));
  const targets = [...document.querySelectorAll('a[href^="#"]')]
    .map((link) => link.getAttribute("href").slice(1))
    .filter((target) => target !== "_");
  const found = {
    width: innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    images: document.images.length,
    loaded: [...document.images].filter((image) => image.complete && image.naturalWidth > 0).length,
    links: targets.length,
    unresolved: targets.filter((target) => !ids.has(target)),
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(found);
  document.body.append(out);
});
</script>"""


def chromium(*args):
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.fixture(scope="module")
def report(small_mnist, tmp_path_factory):
    X, y, X_test, y_test = small_mnist
    models = {
        "logistic": make_baseline("logistic"),
        "knn+deskew": make_baseline("knn", deskew=True),
        "cnn": make_baseline("cnn", max_epochs=2, random_state=0),
    }
    comparison = compare(models, X, y, X_test, y_test)
    return write_report(comparison, tmp_path_factory.mktemp("report"), notes=["Opened in a browser."])


@pytest.mark.parametrize("width", [800, 1280])
def test_the_report_in_a_browser_fits_the_window_loads_every_figure_and_every_link_resolves(report, width):
    probed = report.with_name("probed.html")
    probed.write_text(
        report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    dom = chromium(
        f"--window-size={width},1000", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()
    )
    found = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)[1])
    assert found["width"] == width
    assert found["scrollWidth"] <= width  # no horizontal scrolling of the page
    assert found["images"] == found["loaded"] == len(list(report.parent.glob("*.png")))
    assert found["links"] > 0 and found["unresolved"] == []


def test_a_screenshot_of_the_report(report, tmp_path):
    shot = tmp_path / "report.png"
    chromium("--window-size=800,1200", f"--screenshot={shot}", report.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
