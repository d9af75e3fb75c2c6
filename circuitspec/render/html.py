"""``index.html``: one self-contained page that ties a report together.

It opens from disk with no server: every link and image is a relative path inside the report
folder (SVGs are linked as ``<img>``, each wrapped in a link to open it full size, where the cells'
tooltips work). The page holds the summary table, and per hypothesis its cross-model matrix and,
per model, the verdict, metrics, failing nodes, node map, graph and every node's evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from circuitspec.render.matrix import matrix, matrix_html
from circuitspec.render.style import STATUS_FILL, VERDICT_FILL, fmt_estimate, site_label
from circuitspec.render.summary import counts, failing_nodes, node_text, reason_text, worst_text
from circuitspec.verify.verdict import CircuitMetrics, Report, Verdict

CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ccc; margin-top: 2em; }
h3 { margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 3px 7px; text-align: left; vertical-align: top; }
thead th { background: #f3f3f3; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 4px; font-weight: bold; }
.meta { color: #666; font-size: 13px; }
figure { margin: 0.8em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 12px; color: #666; }
details { margin: 0.5em 0; } summary { cursor: pointer; }
"""


@dataclass(frozen=True)
class PairFiles:
    """Paths, relative to the report folder, of one (hypothesis, model) pair's pictures."""

    graph: str
    nodemap: str


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{VERDICT_FILL[status]}">{escape(status)}</span>'


def anchor(v: Verdict) -> str:
    return "v-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in f"{v.hypothesis}--{v.model}")


def _summary_table(verdicts: list[Verdict]) -> str:
    out = ["<table><thead><tr><th>hypothesis</th><th>model</th><th>verdict</th><th>nodes placed/required</th>"
           "<th>faithfulness [95% CI]</th><th>worst node</th></tr></thead><tbody>"]
    for v in verdicts:
        out.append(
            f'<tr><td>{escape(v.hypothesis)}</td><td><a href="#{anchor(v)}">{escape(v.model)}</a></td>'
            f"<td>{_badge(v.status)}</td><td>{escape(counts(v).text)}</td>"
            f"<td>{escape(fmt_estimate(v.metrics.faithfulness))}</td><td>{escape(worst_text(v))}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def _nodes_table(v: Verdict) -> str:
    out = ["<table><thead><tr><th>node</th><th>variables</th><th>required</th><th>status</th><th>sites</th>"
           "<th>interchange accuracy [95% CI]</th><th>runner-up</th><th>note</th></tr></thead><tbody>"]
    for n in v.nodes:
        tests = "<br>".join(f"{escape(t.variable)}: {escape(fmt_estimate(t.accuracy))} ({t.pairs} pairs)" for t in n.tests)
        runner = ""
        if n.runner_up is not None:
            runner = f"{escape(site_label(n.runner_up.sites))} ({n.runner_up.score:.2f})"
        out.append(
            f"<tr><td>{escape(n.node)}</td><td>{escape(', '.join(n.variables))}</td><td>{'yes' if n.required else 'no'}</td>"
            f'<td style="background:{STATUS_FILL[n.status]}">{escape(n.status)}</td>'
            f"<td>{escape(site_label(n.sites)) or '-'}</td><td>{tests or '-'}</td><td>{runner or '-'}</td>"
            f"<td>{escape(reason_text(n))}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def _metrics(v: Verdict) -> str:
    m = v.metrics
    items = [
        (f"{name} ({CircuitMetrics.model_fields[name].description or name})", fmt_estimate(getattr(m, name)))
        for name in ("faithfulness", "completeness")
    ]
    items.append(("clean accuracy", fmt_estimate(m.clean_accuracy)))
    if m.minimality:
        items.append(("minimality (faithfulness drop per node)", ", ".join(f"{k} {val:.2f}" for k, val in sorted(m.minimality.items()))))
    return "<ul>" + "".join(f"<li>{escape(k)}: {escape(val)}</li>" for k, val in items) + "</ul>"


def _figure(path: str, caption: str) -> str:
    p = escape(path, quote=True)
    return f'<figure><a href="{p}"><img src="{p}" alt="{escape(caption, quote=True)}"></a><figcaption>{escape(caption)}</figcaption></figure>'


def _pair(v: Verdict, files: PairFiles) -> str:
    c = counts(v)
    parts = [
        f'<h3 id="{anchor(v)}">{escape(v.model)} {_badge(v.status)}</h3>',
        f"<p>{escape(v.summary)}</p>",
        f'<p class="meta">{c.placed_required}/{c.required} required nodes placed, {c.confirmed_required} confirmed; '
        f"{c.placed}/{c.total} nodes placed in all; seed {v.seed}; "
        f"{escape(v.layout.op)}, {v.layout.digits} digits, {v.layout.n_layers} layers, {v.layout.n_heads} heads</p>",
        _metrics(v),
    ]
    bad = failing_nodes(v)
    if bad:
        parts.append("<p><b>Required nodes not confirmed:</b></p><ul>")
        parts.extend(f"<li>{escape(node_text(n))}</li>" for n in bad)
        parts.append("</ul>")
    parts.append(_figure(files.nodemap, f"node map: {v.hypothesis} on {v.model}"))
    parts.append(_figure(files.graph, f"hypothesis graph with sites: {v.hypothesis} on {v.model}"))
    parts.append(f"<details><summary>evidence for every node</summary>{_nodes_table(v)}</details>")
    return "".join(parts)


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
    hyps = list(dict.fromkeys(v.hypothesis for v in verdicts))
    body = [
        "<h1>circuitspec report</h1>",
        f'<p class="meta">circuitspec {escape(report.circuitspec_version)}, seed {report.seed}; '
        f"{len(hyps)} hypotheses, {len({v.model for v in verdicts})} models, {len(verdicts)} verdicts: "
        + ", ".join(f"{n} {escape(s)}" for s, n in sorted(tally.items()))
        + "</p>",
    ]
    if links:
        body.append("<p>" + " | ".join(f'<a href="{escape(p, quote=True)}">{escape(k)}</a>' for k, p in links.items()) + "</p>")
    body.append(_summary_table(verdicts))
    for h in hyps:
        body.append(f'<h2 id="h-{escape(h, quote=True)}">{escape(h)}</h2>')
        body.append(f'<p>Cross-model matrix (<a href="{escape(matrices[h], quote=True)}">as SVG</a>):</p>')
        body.append(matrix_html(matrix(verdicts, h)))
        for v in verdicts:
            if v.hypothesis == h:
                body.append(_pair(v, pairs[(v.hypothesis, v.model)]))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>circuitspec report</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
