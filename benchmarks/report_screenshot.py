"""Open a report's index.html in headless Chromium: screenshot it and check every image loaded.

    python benchmarks/report_screenshot.py [REPORT_DIR] [--png FILE] [--width 1400] [--height 4000]

REPORT_DIR (default ./circuitspec-report) is a folder written by ``circuitspec verify`` or
``circuitspec render``. The page is loaded from ``file://`` with no server, exactly as a user
opens it. Two Chromium runs:

1. ``--dump-dom`` of a small probe page, written next to index.html, that loads index.html in an
   iframe and records, for every ``<img>``, whether it finished loading with a non-zero size
   (needs ``--allow-file-access-from-files`` so the probe may read the iframe);
2. ``--screenshot`` of index.html itself.

Exit status 0 when every image rendered, 1 otherwise (the broken ones are listed). Needs
``chromium`` (Debian: ``apt-get install -y chromium``); ``.ci/run`` installs it where it can and runs this on both of its reports.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<iframe id="f" src="index.html" style="width:1400px;height:900px"></iframe>
<pre id="out">pending</pre>
<script>
const f = document.getElementById('f');
f.addEventListener('load', () => {
  const check = () => {
    const imgs = Array.from(f.contentDocument.images);
    if (!imgs.every(i => i.complete)) { setTimeout(check, 50); return; }
    const rows = imgs.map(i => ({src: i.getAttribute('src'), ok: i.naturalWidth > 0 && i.naturalHeight > 0,
                                 w: i.naturalWidth, h: i.naturalHeight}));
    document.getElementById('out').textContent = 'RESULT' + JSON.stringify(rows) + 'END';
  };
  check();
});
</script></body></html>
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("chromium not found: apt-get install -y chromium")


def run_chromium(args: list[str], profile: str) -> subprocess.CompletedProcess:
    cmd = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run", f"--user-data-dir={profile}", *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def check_images(folder: Path) -> list[dict]:
    probe = folder / ".screenshot-probe.html"
    probe.write_text(PROBE)
    try:
        with tempfile.TemporaryDirectory() as profile:
            r = run_chromium(["--allow-file-access-from-files", "--virtual-time-budget=20000", "--dump-dom", probe.as_uri()], profile)
    finally:
        probe.unlink()
    m = re.search(r"RESULT(.*?)END", r.stdout, re.S)
    if not m:
        sys.exit(f"probe page did not report (chromium exit {r.returncode}):\n{r.stderr[-2000:]}")
    return json.loads(html.unescape(m.group(1)))


def screenshot(index: Path, png: Path, width: int, height: int) -> float:
    with tempfile.TemporaryDirectory() as profile:
        t0 = time.perf_counter()
        r = run_chromium([f"--window-size={width},{height}", "--hide-scrollbars", f"--screenshot={png}", index.as_uri()], profile)
        took = time.perf_counter() - t0
    if not png.is_file():
        sys.exit(f"no screenshot written (chromium exit {r.returncode}):\n{r.stderr[-2000:]}")
    return took


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", nargs="?", default="circuitspec-report", type=Path)
    ap.add_argument("--png", type=Path, default=None, help="screenshot path (default REPORT/screenshot.png)")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=4000)
    a = ap.parse_args(argv)
    folder = a.report.resolve()
    index = folder / "index.html"
    if not index.is_file():
        sys.exit(f"{index} not found: run 'circuitspec verify SPEC... --out {a.report}' first")
    rows = check_images(folder)
    bad = [r for r in rows if not r["ok"]]
    png = (a.png or folder / "screenshot.png").resolve()
    took = screenshot(index, png, a.width, a.height)
    print(f"{len(rows)} images on the page, {len(rows) - len(bad)} rendered, {len(bad)} broken")
    for r in bad:
        print(f"  BROKEN {r['src']}")
    print(f"screenshot: {png} ({os.path.getsize(png)} bytes, {took:.1f} s)")
    return 1 if bad or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
