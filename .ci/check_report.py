"""Check a report folder as a user would find it: every file there, every verdict on the page.

    python .ci/check_report.py DIR [--exit-code N] --graphviz-layouts yes|no

Passes (exit 0) when DIR holds report.json (valid), junit.xml (one test case per verdict) and
index.html whose every link and image resolves inside DIR, with one section, one node map and
one hypothesis graph per verdict; when there is a graphviz layout per verdict (``yes``) or none
(``no``); and when N, the exit code ``circuitspec verify`` gave, is the one its verdicts call for
(1 if any fails or is inconclusive, else 0). Prints what it found.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.ids: set[str] = set()
        self.imgs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        self.refs += [(k, v) for k, v in attrs if k in ("src", "href") and v and not v.startswith("#")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--exit-code", type=int, default=None, help="what 'circuitspec verify' exited with")
    ap.add_argument("--graphviz-layouts", choices=("yes", "no"), required=True)
    a = ap.parse_args()
    from circuitspec.render.html import anchor
    from circuitspec.render.report import load_report

    problems = []
    report = load_report(a.folder / "report.json")
    verdicts = report.verdicts
    cases = ET.parse(a.folder / "junit.xml").getroot().findall(".//testcase")
    if len(cases) != len(verdicts):
        problems.append(f"junit.xml has {len(cases)} test cases for {len(verdicts)} verdicts")
    page = _Page()
    page.feed((a.folder / "index.html").read_text(encoding="utf-8"))
    for _, ref in page.refs:
        if ref.startswith(("/", "http:", "https:", "file:")) or not (a.folder / ref).is_file():
            problems.append(f"index.html links to {ref}, which is not a file in the report")
    for v in verdicts:
        if anchor(v) not in page.ids:
            problems.append(f"no section for {v.hypothesis} on {v.model}")
    graphs = [s for s in page.imgs if s.startswith("graphs/")]
    maps = [s for s in page.imgs if s.startswith("nodemaps/")]
    if len(graphs) != len(verdicts) or len(maps) != len(verdicts):
        problems.append(f"{len(graphs)} graphs and {len(maps)} node maps on the page for {len(verdicts)} verdicts")
    expected = 1 if any(v.status in ("fails", "inconclusive") for v in verdicts) else 0
    layouts = len(list(a.folder.rglob("*.dot.svg")))
    if layouts != (len(verdicts) if a.graphviz_layouts == "yes" else 0):
        problems.append(f"{layouts} graphviz layouts for {len(verdicts)} verdicts, expected {a.graphviz_layouts}")
    if a.exit_code is not None and a.exit_code != expected:
        problems.append(f"verify exited {a.exit_code}, its verdicts call for {expected}")
    statuses = sorted({v.status for v in verdicts})
    print(f"{a.folder}: {len(verdicts)} verdicts ({', '.join(statuses)}), {len(graphs)} graphs, {len(maps)} node maps, "
          f"{layouts} graphviz layouts" + ("" if a.exit_code is None else f", exit code {a.exit_code}"))
    for p in problems:
        print("  PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
