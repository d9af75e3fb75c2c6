"""Labels as the paper shows its findings: a table (one line per site) and a labelled node map.

The map is the node map of ``render.nodemap`` (positions across, each layer's heads then its MLP
down) with each useful cell naming what the site computes: its label(s) in green, with the
neurons of a labelled MLP under them; ``?`` in blue for a useful site no variable explains;
heads that only a co-located set explains carry the set's label. ``write_labels`` writes, per
model, ``<model>.labels.json`` and ``<model>.labels.svg`` and one ``index.html`` for them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from circuitspec.atomic import atomic_write
from circuitspec.engine.sites import Site
from circuitspec.match.label import Labels
from circuitspec.render.html import environment
from circuitspec.render.nodemap import Cell, NodeMap, Row, draw_node_map
from circuitspec.render.style import STATUS_FILL, UNUSED_FILL, USEFUL_FILL

TEMPLATE = "labels.html.j2"
LEGEND = [(STATUS_FILL["confirmed"], "labelled"), (USEFUL_FILL, "? useful, unexplained"), (UNUSED_FILL, "not useful")]


def table_lines(labels: Labels) -> list[str]:
    """The table: one line per site (paper notation first), with position, label(s), served digits, neurons."""
    with_neurons = any(s.neurons for s in labels.sites)
    rows = [("site", "at", "computes [95% CI]", "serves", *(("neurons",) if with_neurons else ()))]
    for s in labels.sites:
        neurons = "  ".join(f"{n.variable}: {n.site} ({n.neurons})" for n in s.neurons)
        rows.append((s.site, s.position_label, s.text, " ".join(s.serves), *((neurons,) if with_neurons else ())))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths)), r[-1]]).rstrip() for r in rows]
    c = labels.counts()
    lines.append(
        f"{labels.model}: {c['labelled']} labelled, {c['unexplained']} unexplained, {c['in_set']} in a labelled head set; "
        f"{labels.tests} interchange tests over {labels.variables_tested} variable instances"
    )
    if labels.explains:
        failed = ", ".join(f"{c.cls} {c.accuracy:.2f}" for c in labels.classes if not c.answered)
        lines.append(f"pairs from the classes the model answers: {', '.join(labels.explains)} (not {failed})")
    return lines


def label_map(labels: Labels) -> NodeMap:
    """The node map of the labels (``render.nodemap.NodeMap``), as data."""
    rows: list[Row] = []
    for layer in range(labels.n_layers):
        rows.extend(Row(layer, "head", h) for h in range(labels.n_heads))
        rows.append(Row(layer, "mlp"))
    cells = {(r, p): Cell(r, p) for r in rows for p in range(len(labels.position_labels))}
    by_site = {s.site: s for s in labels.sites}
    for s in labels.sites:
        if s.kind == "heads":
            continue
        site = Site.parse(s.site)
        cell = cells[(Row(site.layer, "head", site.head) if site.kind == "head" else Row(site.layer, "mlp"), site.position)]
        owner = by_site[s.part_of] if s.part_of else s
        cell.sites.append(s.site)
        if owner.status == "labelled":
            cell.kind = "node"
            for v in owner.variables:
                cell.nodes.append(v.name)
                cell.statuses.append("confirmed")
            for n in s.neurons:
                cell.neurons[next(v.name for v in s.variables if v.variable == n.variable)] = Site.parse(n.site).neurons
        else:
            cell.kind = "useful"
    c = labels.counts()
    title = f"labels of {labels.model}: {c['labelled']} labelled, {c['unexplained']} unexplained"
    return NodeMap(title, list(labels.position_labels), rows, cells, not_placed=[])


def _tooltip(labels: Labels):
    by_site = {s.site: s for s in labels.sites}

    def tip(m: NodeMap, cell: Cell) -> str:
        where = f"P{cell.position} ({m.position_labels[cell.position]}) {cell.row.label}"
        if not cell.sites:
            return f"{where}: not useful"
        s = by_site[cell.sites[0]]
        text = by_site[s.part_of].text + f" (with {s.part_of})" if s.part_of else s.text
        return f"{where}: {text}; serves {' '.join(s.serves) or 'nothing'}"

    return tip


def label_map_svg(labels: Labels) -> bytes:
    """The labelled node map as SVG (each cell's tooltip gives the accuracy and served digits)."""
    return draw_node_map(label_map(labels), legend=LEGEND, tooltip=_tooltip(labels))


def file_stem(labels: Labels) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in labels.model)


def labels_html(all_labels: Sequence[Labels]) -> str:
    """One page: per model its labelled map (linked SVG) and the table."""
    models = []
    for lab in all_labels:
        models.append({
            "name": lab.model,
            "svg": f"{file_stem(lab)}.labels.svg",
            "json": f"{file_stem(lab)}.labels.json",
            "counts": lab.counts(),
            "rows": [
                {"site": s.site, "at": s.position_label, "status": s.status, "text": s.text,
                 "serves": " ".join(s.serves), "implied": ", ".join(s.implied),
                 "neurons": "; ".join(f"{n.variable}: {n.site}" for n in s.neurons)}
                for s in lab.sites
            ],
        })
    fills = {"labelled": STATUS_FILL["confirmed"], "unexplained": USEFUL_FILL, "in_set": "#ffffff"}
    return environment().get_template(TEMPLATE).render(models=models, fills=fills)


def write_labels(all_labels: Sequence[Labels], out: str | Path) -> list[Path]:
    """``<model>.labels.json`` and ``.svg`` per model and ``index.html``, each written atomically."""
    out = Path(out)
    written = []
    for lab in all_labels:
        stem = file_stem(lab)
        written.append(atomic_write(out / f"{stem}.labels.json", lab.to_json()))
        written.append(atomic_write(out / f"{stem}.labels.svg", label_map_svg(lab)))
    written.append(atomic_write(out / "index.html", labels_html(all_labels)))
    return written
