"""Write a whole report folder from a ``Report``: JSON, JUnit, SVGs and ``index.html``.

Layout of the folder (paths relative to it)::

    report.json                          the Report (all verdicts), stable JSON
    junit.xml                            one test case per (hypothesis, model)
    graphs/<hypothesis>/<model>.svg      hypothesis graph on the model's grid, nodes labelled by their sites
    graphs/<hypothesis>/<model>.gv       its graphviz DOT source
    graphs/<hypothesis>/<model>.dot.svg  the same graph laid out by graphviz (only where ``dot`` works)
    nodemaps/<hypothesis>/<model>.svg    the paper's node map
    matrices/<hypothesis>.svg            nodes x models
    index.html                           ties them together (written last)

Nothing here needs a system program: every picture but the optional graphviz layout is written
by this project, so a report is complete with or without graphviz, and whether ``dot`` is there
changes only which extra files are written. Every file is written atomically, pictures first and
``report.json`` / ``index.html`` last, so an interrupted run leaves either the previous report or the
complete new one under each name. ``circuitspec render`` calls ``write_report(load_report(path), out)``:
no model is touched.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pydantic

from circuitspec.errors import CircuitSpecError
from circuitspec.atomic import atomic_write
from circuitspec.render.files import dot_available, dot_svg, slug
from circuitspec.render.graph import verdict_graph, verdict_svg
from circuitspec.render.html import PairFiles, index_html
from circuitspec.render.junit import junit_xml
from circuitspec.render.matrix import matrix, matrix_svg
from circuitspec.render.nodemap import node_map_svg
from circuitspec.verify.verdict import Report, Verdict

log = logging.getLogger(__name__)

REPORT_JSON = "report.json"
JUNIT_XML = "junit.xml"
INDEX_HTML = "index.html"


@dataclass
class RenderedReport:
    """What ``write_report`` wrote (absolute paths)."""

    folder: Path
    report_json: Path
    junit_xml: Path
    index_html: Path
    graphs: dict[tuple[str, str], Path] = field(default_factory=dict)
    graph_sources: dict[tuple[str, str], Path] = field(default_factory=dict)
    dot_graphs: dict[tuple[str, str], Path] = field(default_factory=dict)  # empty without a working ``dot``
    nodemaps: dict[tuple[str, str], Path] = field(default_factory=dict)
    matrices: dict[str, Path] = field(default_factory=dict)


def report_json(report: Report) -> bytes:
    """The report as stable JSON bytes (same report, same bytes)."""
    return (report.model_dump_json(indent=2) + "\n").encode("utf-8")


def load_report(path: str | Path) -> Report:
    """Read a saved ``report.json`` (a CircuitSpecError naming the file if it is missing or invalid)."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CircuitSpecError(f"no report at {path}", file=str(path), hint="run 'circuitspec verify' first, or give the path of a report.json") from None
    except OSError as err:
        raise CircuitSpecError(f"cannot read {path}: {err.strerror}", file=str(path)) from None
    try:
        return Report.model_validate_json(text)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise CircuitSpecError(
            f"not a circuitspec report: {first['msg']}" + (f" at {loc}" if loc else ""),
            file=str(path),
            hint="give a report.json written by 'circuitspec verify'",
        ) from None


def unique_slugs(names: list[str]) -> dict[str, str]:
    """A distinct file-name stem per name (a short hash is added where two names slug alike)."""
    stems: dict[str, list[str]] = {}
    for n in dict.fromkeys(names):
        stems.setdefault(slug(n), []).append(n)
    out = {}
    for stem, group in stems.items():
        for n in group:
            out[n] = stem if len(group) == 1 else f"{stem}-{hashlib.sha256(n.encode()).hexdigest()[:8]}"
    return out


def _write_pair(v: Verdict, folder: Path, stem: str, rendered: RenderedReport, dot: bool) -> PairFiles:
    """One pair's node map, grid graph and DOT source, and the graphviz layout when ``dot`` works."""
    key = (v.hypothesis, v.model)
    files = PairFiles(graph=f"graphs/{stem}.svg", nodemap=f"nodemaps/{stem}.svg", graph_source=f"graphs/{stem}.gv")
    rendered.nodemaps[key] = atomic_write(folder / files.nodemap, node_map_svg(v))
    rendered.graphs[key] = atomic_write(folder / files.graph, verdict_svg(v))
    source = verdict_graph(v)
    rendered.graph_sources[key] = atomic_write(folder / files.graph_source, source.source.encode("utf-8"))
    if not dot:
        return files
    try:
        data = dot_svg(source)
    except CircuitSpecError as err:  # dot stopped working mid-run: the report is complete without it
        log.warning("no graphviz layout for %s on %s: %s", v.hypothesis, v.model, err)
        return files
    rel = f"graphs/{stem}.dot.svg"
    rendered.dot_graphs[key] = atomic_write(folder / rel, data)
    return PairFiles(files.graph, files.nodemap, files.graph_source, rel)


def write_report(report: Report, out: str | Path, *, dot: bool | None = None) -> RenderedReport:
    """Render every file of the report into folder ``out`` (created if needed).

    ``dot``: also lay each graph out with graphviz; None asks ``dot_available()``.
    """
    folder = Path(out).resolve()
    keys = [(v.hypothesis, v.model) for v in report.verdicts]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        h, m = sorted(dup)[0]
        raise CircuitSpecError(f"the report has more than one verdict for hypothesis {h!r} on model {m!r}")
    dot = dot_available() if dot is None else dot
    hyp_stem = unique_slugs([v.hypothesis for v in report.verdicts])
    model_stem = unique_slugs([v.model for v in report.verdicts])
    rendered = RenderedReport(folder, folder / REPORT_JSON, folder / JUNIT_XML, folder / INDEX_HTML)
    pairs: dict[tuple[str, str], PairFiles] = {}
    for v in report.verdicts:
        stem = f"{hyp_stem[v.hypothesis]}/{model_stem[v.model]}"
        pairs[(v.hypothesis, v.model)] = _write_pair(v, folder, stem, rendered, dot)
    matrices: dict[str, str] = {}
    for hyp in dict.fromkeys(v.hypothesis for v in report.verdicts):
        rel = f"matrices/{hyp_stem[hyp]}.svg"
        rendered.matrices[hyp] = atomic_write(folder / rel, matrix_svg(matrix(report.verdicts, hyp)))
        matrices[hyp] = rel
    atomic_write(rendered.junit_xml, junit_xml(report))
    atomic_write(rendered.report_json, report_json(report))
    page = index_html(report, pairs, matrices, links={"report.json": REPORT_JSON, "junit.xml": JUNIT_XML})
    atomic_write(rendered.index_html, page)
    return rendered


def report_summary(report: Report) -> dict[str, int]:
    """Count of verdicts per status (for exit codes and messages)."""
    out: dict[str, int] = {}
    for v in report.verdicts:
        out[v.status] = out.get(v.status, 0) + 1
    return dict(sorted(out.items()))


__all__ = ["RenderedReport", "load_report", "report_json", "report_summary", "unique_slugs", "write_report"]
