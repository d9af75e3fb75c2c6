"""``index.html``: one self-contained page that ties a report together, from a jinja2 template.

It opens from disk with no server: every link and image is a relative path inside the report
folder (SVGs are linked as ``<img>``, each wrapped in a link to open it full size, where the cells'
tooltips work). The page holds the summary table, and per hypothesis its cross-model matrix and,
per model, the verdict, metrics, failing nodes, node map, graph and every node's evidence.

The page's text is prepared here (``_pair`` and friends: plain strings and tuples); the markup is
``templates/index.html.j2``, rendered with autoescaping, so no value reaches the page unescaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import jinja2

from circuitspec.render.gap import repair_text, set_text, site_names
from circuitspec.render.matrix import matrix
from circuitspec.render.style import EDGE_STROKE, STATUS_FILL, VERDICT_FILL, fmt_estimate, site_label
from circuitspec.render.summary import counts, edge_counts, edge_text, failing_edges, failing_nodes, node_text, reason_text, worst_text
from circuitspec.verify.verdict import CircuitMetrics, EdgeVerdict, NodeVerdict, Report, Verdict

TEMPLATE = "index.html.j2"


@dataclass(frozen=True)
class PairFiles:
    """Paths, relative to the report folder, of one (hypothesis, model) pair's pictures.

    ``graph`` is drawn on the model's grid; ``graph_source`` is its DOT source and ``graph_dot``
    the graphviz layout of it (only where ``dot`` was available).
    """

    graph: str
    nodemap: str
    graph_source: str | None = None
    graph_dot: str | None = None


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The package templates' jinja2 environment (autoescaped, strict), shared by every HTML page."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("circuitspec.render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def anchor(v: Verdict) -> str:
    return "v-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in f"{v.hypothesis}--{v.model}")


def _metrics(v: Verdict) -> list[tuple[str, str]]:
    m = v.metrics
    items = [
        (f"{name} ({CircuitMetrics.model_fields[name].description or name})", fmt_estimate(getattr(m, name)))
        for name in ("faithfulness", "completeness")
    ]
    if m.resample is not None:
        items.append(("under resample ablation (values from other questions of the same classes)",
                      f"faithfulness {fmt_estimate(m.resample.faithfulness)}, completeness {fmt_estimate(m.resample.completeness)}"))
    items.append(("clean accuracy", fmt_estimate(m.clean_accuracy)))
    if m.minimality:
        items.append(("minimality (faithfulness drop per node)", ", ".join(f"{k} {val:.2f}" for k, val in sorted(m.minimality.items()))))
    return items


def _node_row(n: NodeVerdict) -> dict:
    runner = f"{site_label(n.runner_up.sites)} ({n.runner_up.score:.2f})" if n.runner_up is not None else "-"
    return {
        "node": n.node,
        "variables": ", ".join(n.variables),
        "required": "yes" if n.required else "no",
        "status": n.status,
        "fill": STATUS_FILL[n.status],
        "sites": site_label(n.sites) or "-",
        "tests": [f"{t.variable}: {fmt_estimate(t.accuracy)} ({t.pairs} pairs)" for t in n.tests],
        "runner_up": runner,
        "note": reason_text(n),
    }


def _edge_row(e: EdgeVerdict) -> dict:
    return {
        "edge": f"{e.source} -> {e.target}",
        "required": "yes" if e.required else "no",
        "status": e.status,
        "stroke": EDGE_STROKE[e.status],
        "accuracy": f"{fmt_estimate(e.accuracy)} ({e.pairs} pairs)" if e.accuracy is not None else "-",
        "detail": e.detail,
        "example": e.example or "-",
    }


def _pair(v: Verdict, files: PairFiles) -> dict:
    links = [(label, path) for label, path in (("graphviz layout", files.graph_dot), ("DOT source", files.graph_source)) if path]
    return {
        "v": v,
        "anchor": anchor(v),
        "counts": counts(v),
        "faithfulness": fmt_estimate(v.metrics.faithfulness),
        "worst": worst_text(v),
        "metrics": _metrics(v),
        "failing": [node_text(n) for n in failing_nodes(v)],
        "edges": edge_counts(v),
        "failing_edges": [edge_text(e) for e in failing_edges(v)],
        "edge_rows": [_edge_row(e) for e in v.edge_results],
        "files": files,
        "graph_links": links,
        "nodes": [_node_row(n) for n in v.nodes],
        "gap": _gap(v),
    }


def _gap(v: Verdict) -> dict | None:
    """The gap report as the page shows it: the whole ranking, the smallest set step by step."""
    if v.gap is None:
        return None
    names = site_names(v)
    return {
        "head": f"faithfulness {v.gap.faithfulness:.2f} under {v.gap.ablation} ablation on {v.gap.questions} questions; {v.gap.method}",
        "ranking": [repair_text(r, names=names) for r in v.gap.ranking],
        "set": set_text(v),
        "steps": [repair_text(r, names=names) for r in v.gap.smallest_set],
    }


def index_html(
    report: Report,
    pairs: Mapping[tuple[str, str], PairFiles],
    matrices: Mapping[str, str],
    *,
    links: Mapping[str, str] | None = None,
) -> str:
    """The page. ``pairs``: (hypothesis, model) -> its SVGs; ``matrices``: hypothesis -> matrix SVG;
    ``links``: extra files to link at the top (label -> relative path)."""
    verdicts = list(report.verdicts)
    tally: dict[str, int] = {}
    for v in verdicts:
        tally[v.status] = tally.get(v.status, 0) + 1
    rows = [_pair(v, pairs[(v.hypothesis, v.model)]) for v in verdicts]
    hypotheses = []
    for h in dict.fromkeys(v.hypothesis for v in verdicts):
        m = matrix(verdicts, h)
        hypotheses.append({
            "name": h,
            "matrix": m,
            "header": list(zip(m.models, m.model_status)),
            "matrix_svg": matrices[h],
            "pairs": [r for r in rows if r["v"].hypothesis == h],
        })
    return environment().get_template(TEMPLATE).render(
        version=report.circuitspec_version,
        seed=report.seed,
        verdicts=verdicts,
        n_models=len({v.model for v in verdicts}),
        tally=sorted(tally.items()),
        links=list((links or {}).items()),
        pairs=rows,
        hypotheses=hypotheses,
        verdict_fill=VERDICT_FILL,
    )
