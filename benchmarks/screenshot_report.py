"""Render a report.html in headless Chromium and save a screenshot, to look at it.

Usage: python benchmarks/screenshot_report.py report/report.html [--out report.png] [--height 4000]

Needs Debian's ``chromium`` (``apt-get install -y chromium``). The browser runs
with networking features off: a self-contained report renders completely
anyway, and one that is not shows its missing pieces.
"""

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path


def screenshot(html_path, png_path, width=1280, height=4000):
    """Save a ``width`` x ``height`` screenshot of ``html_path`` to ``png_path``."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found; install it with: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",  # needed when running as root
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={Path(png_path).resolve()}",
                f"--window-size={width},{height}",
                Path(html_path).resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html")
    parser.add_argument("--out", default="report.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args()
    screenshot(args.html, args.out, args.width, args.height)
    print(f"screenshot: {args.out}")


if __name__ == "__main__":
    main()
