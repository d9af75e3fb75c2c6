"""A small SVG writer: boxes, text, lines and groups with tooltips, laid out by the caller.

The report's tables (node map, cross-model matrix) and the hypothesis graph on the model's grid
have their coordinates given by what they show, so they need no layout engine: this module only
measures text (a fixed per-character width, generous enough for Helvetica / Arial / DejaVu Sans)
and writes the elements. Output is deterministic (same calls, same bytes).
"""

from __future__ import annotations

from html import escape

FONT = "Helvetica, Arial, 'DejaVu Sans', sans-serif"
CHAR_WIDTH = 0.62  # of the font size, an upper bound for the proportional fonts above
LINE_HEIGHT = 1.25  # of the font size


def text_width(text: str, size: float) -> float:
    """Width that ``text`` needs at font ``size`` (px)."""
    return len(text) * size * CHAR_WIDTH


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _attrs(**kw) -> str:
    out = []
    for k, v in kw.items():
        if v is None:
            continue
        name = k.rstrip("_").replace("_", "-")
        out.append(f' {name}="{escape(_num(v) if isinstance(v, float) else str(v), quote=True)}"')
    return "".join(out)


class Canvas:
    """Collects SVG elements; ``to_bytes()`` wraps them in an ``<svg>`` of the given size."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._open = 0

    def group(self, *, id: str | None = None, cls: str | None = None, title: str | None = None, desc: str | None = None) -> None:
        """Open a ``<g>`` (close with ``end()``); ``title`` becomes its tooltip, ``desc`` its longer description."""
        self.parts.append(f"<g{_attrs(id=id, class_=cls)}>")
        if title:
            self.parts.append(f"<title>{escape(title)}</title>")
        if desc:
            self.parts.append(f"<desc>{escape(desc)}</desc>")
        self._open += 1

    def end(self) -> None:
        self.parts.append("</g>")
        self._open -= 1

    def rect(self, x: float, y: float, w: float, h: float, *, fill: str, stroke: str = "#888888",
             rx: float | None = None, dashed: bool = False, stroke_width: float | None = None) -> None:
        self.parts.append(
            "<rect" + _attrs(x=float(x), y=float(y), width=float(w), height=float(h), rx=None if rx is None else float(rx),
                             fill=fill, stroke=stroke, stroke_width=None if stroke_width is None else float(stroke_width),
                             stroke_dasharray="4 3" if dashed else None) + "/>"
        )

    def text(self, x: float, y: float, text: str, *, size: float = 11, anchor: str = "middle",
             bold: bool = False, italic: bool = False, fill: str = "#222222") -> None:
        """One line of text whose baseline is at ``y``."""
        self.parts.append(
            "<text" + _attrs(x=float(x), y=float(y), font_size=float(size), text_anchor=anchor,
                             font_weight="bold" if bold else None, font_style="italic" if italic else None, fill=fill)
            + f">{escape(text)}</text>"
        )

    def lines(self, x: float, top: float, lines: list[tuple[str, float]], **kw) -> float:
        """Lines of (text, size) from ``top`` down; returns the y below the last one."""
        y = top
        for text, size in lines:
            y += size * LINE_HEIGHT
            self.text(x, y - size * 0.3, text, size=size, **kw)
        return y

    def path(self, d: str, *, stroke: str = "#555555", width: float = 1.0, dashed: bool = False, arrow: bool = False) -> None:
        self.parts.append(
            "<path" + _attrs(d=d, fill="none", stroke=stroke, stroke_width=float(width),
                             stroke_dasharray="5 3" if dashed else None, marker_end="url(#arrow)" if arrow else None) + "/>"
        )

    def to_bytes(self, width: float, height: float) -> bytes:
        if self._open:
            raise RuntimeError("unclosed <g> in an SVG canvas")
        head = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" height="{_num(height)}" '
            f'viewBox="0 0 {_num(width)} {_num(height)}" font-family="{escape(FONT, quote=True)}">\n'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555555"/></marker></defs>\n'
            f'<rect x="0" y="0" width="{_num(width)}" height="{_num(height)}" fill="#ffffff"/>\n'
        )
        return (head + "\n".join(self.parts) + "\n</svg>\n").encode("utf-8")
