"""Parsed forms of spec strings (ranges, positions, variables, templates, flows) and their parsers.

The expression language itself (tokenizer, recursive-descent parser, evaluation) lives in
``circuitspec.spec.expr``; this module turns whole field strings into the small frozen forms
that the schema checks and expansion evaluates. Parsers are cached on their text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from circuitspec.errors import TemplateError
from circuitspec.spec.expr import MAX_TEXT, _Parser, evaluate, names_in, show


@dataclass(frozen=True)
class Range:
    """``lo..hi`` (``hi`` None for a single value)."""

    lo: tuple
    hi: tuple | None

    @property
    def names(self) -> set[str]:
        return names_in(self.lo) | (names_in(self.hi) if self.hi is not None else set())

    def text(self) -> str:
        return show(self.lo) if self.hi is None else f"{show(self.lo)}..{show(self.hi)}"


@dataclass(frozen=True)
class PositionSpec:
    """One position or a range of positions; refs are tuples from ``_Parser.position_ref``."""

    start: tuple
    end: tuple | None

    @property
    def names(self) -> set[str]:
        out: set[str] = set()
        for ref in (self.start, self.end):
            if ref is not None:
                out |= _ref_names(ref)
        return out


def _ref_names(ref: tuple) -> set[str]:
    if ref[0] == "predicts":
        return _ref_names(ref[1])
    if len(ref) > 1:
        return names_in(ref[1])
    return set()


@dataclass(frozen=True)
class VarRef:
    name: str
    arg: tuple | None

    @property
    def names(self) -> set[str]:
        return names_in(self.arg) if self.arg is not None else set()

    def text(self) -> str:
        return self.name if self.arg is None else f"{self.name}({show(self.arg)})"


@dataclass(frozen=True)
class Template:
    """Text with ``{expr}`` holes: parts are literal strings or expression trees."""

    parts: tuple

    @property
    def names(self) -> set[str]:
        out: set[str] = set()
        for p in self.parts:
            if not isinstance(p, str):
                out |= names_in(p)
        return out

    @property
    def is_constant(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(self, env: dict[str, int]) -> str:
        return "".join(p if isinstance(p, str) else str(evaluate(p, env)) for p in self.parts)


_LITERAL = re.compile(r"[A-Za-z0-9_'.]*")


def _text_only(fn):
    """Cache a parser on its text, refusing anything but a string first (lists are unhashable)."""
    cached = lru_cache(maxsize=4096)(fn)

    def wrapper(text, what: str | None = None):
        if not isinstance(text, str):
            raise TemplateError(f"expected text, got {type(text).__name__} {text!r:.60}")
        return cached(text) if what is None else cached(text, what)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_text_only
def parse_expr(text: str, what: str = "expression") -> tuple:
    p = _Parser(text, what)
    if p.tok.kind == "end":
        raise TemplateError(f"empty {what}")
    e = p.expr()
    p.done()
    return e


def _span(text: str, what: str, item):
    """``x`` or ``x..x``, where ``item`` parses one x: the shape every range in a spec has."""
    p = _Parser(text, what)
    if p.tok.kind == "end":
        raise TemplateError(f"empty {what}")
    start = item(p)
    end = None
    if p.at(".."):
        p.take()
        end = item(p)
    p.done()
    return start, end


@_text_only
def parse_range(text: str, what: str = "range") -> Range:
    """``e`` or ``e..e``."""
    return Range(*_span(text, what, _Parser.expr))


@_text_only
def parse_position(text: str, what: str = "position") -> PositionSpec:
    return PositionSpec(*_span(text, what, _Parser.position_ref))


@_text_only
def parse_answer(text: str, what: str = "answer digit") -> PositionSpec:
    """``A(e)``, ``sign`` or a range of them."""
    return PositionSpec(*_span(text, what, _Parser.answer_ref))


@_text_only
def parse_variables(text: str, what: str = "variables") -> tuple[VarRef, ...]:
    """``SA(n)`` or ``SA(n) | MD(n) | ND(n)``."""
    p = _Parser(text, what)
    if p.tok.kind == "end":
        raise TemplateError(f"empty {what}")
    refs = [VarRef(*p.variable())]
    while p.at("|"):
        p.take()
        refs.append(VarRef(*p.variable()))
    p.done()
    return tuple(refs)


@_text_only
def parse_template(text: str, what: str = "id") -> Template:
    """``SV{n-1}`` -> ('SV', tree). Literal parts may hold letters, digits, ``_``, ``'`` and ``.``."""
    if not isinstance(text, str):
        raise TemplateError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise TemplateError(f"{what} is too long ({len(text)} characters, at most {MAX_TEXT})")
    if not text:
        raise TemplateError(f"empty {what}")
    parts: list = []
    i = 0
    while i < len(text):
        j = text.find("{", i)
        literal = text[i:] if j < 0 else text[i:j]
        if literal:
            bad = [c for c in literal if not _LITERAL.fullmatch(c)]
            if bad:
                raise TemplateError(
                    f"bad {what} {text!r}: character {bad[0]!r} is not allowed",
                    hint="names use letters, digits, _, ' and . ; put arithmetic inside {braces}, e.g. SV{n-1}",
                )
            parts.append(literal)
        if j < 0:
            break
        k = text.find("}", j)
        if k < 0:
            raise TemplateError(f"bad {what} {text!r}: '{{' at column {j + 1} is never closed")
        inner = text[j + 1 : k]
        if "{" in inner:
            raise TemplateError(f"bad {what} {text!r}: nested '{{'")
        parts.append(parse_expr(inner, f"expression in {what} {text!r}"))
        i = k + 1
    return Template(tuple(parts))


@_text_only
def parse_flow(text: str) -> tuple[Template, ...]:
    """``A{n} -> B{n}`` or a chain ``A -> B -> C``."""
    if not isinstance(text, str):
        raise TemplateError(f"an edge is written 'SOURCE -> TARGET', got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise TemplateError(f"edge is too long ({len(text)} characters, at most {MAX_TEXT})")
    pieces = [s.strip() for s in text.split("->")]
    if len(pieces) < 2:
        raise TemplateError(f"bad edge {text!r}: expected 'SOURCE -> TARGET'", hint="e.g. ST{n} -> SV{n}")
    out = []
    for piece in pieces:
        if not piece:
            raise TemplateError(f"bad edge {text!r}: a node id is missing around '->'")
        out.append(parse_template(piece, "node id"))
    return tuple(out)
