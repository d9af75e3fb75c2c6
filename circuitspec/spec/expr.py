"""The template sub-language of hypothesis files: a tokenizer and a recursive-descent parser.

Spec files write integer arithmetic inside node ids (``SV{n-1}``), variables (``SA(n)``),
token positions (``D'(n)``, ``predicts A(n+1)``, ``D'(1)..sign``) and layers (``1..last``).
This module parses expressions into small trees and evaluates them against an
environment of integers (``circuitspec.spec.forms`` parses whole field strings with it). It never calls Python's ``eval``.

Integer expressions::

    expr  := term (('+' | '-') term)*
    term  := unary (('*' | '//' | '%') unary)*
    unary := '-' unary | '+' unary | atom
    atom  := INT | NAME | ('min' | 'max') '(' expr (',' expr)* ')' | '(' expr ')'

Names are the ``for_each`` variables of the node or edge and the model's ``digits``,
``layers`` (number of layers), ``heads`` (heads per layer) and ``last`` (= layers - 1).

Positions (``at:``, ``attends: to:``)::

    position := ref ('..' ref)?              a range covers both ends and all between
    ref      := D(e) | D'(e) | A(e) | P(e) | OPR | '=' | sign | predicts (A(e) | sign)

``D(e)``/``D'(e)`` are the operands' digits (0 = units), ``A(e)`` the answer digits
(``A(digits)`` is the top one), ``sign`` the answer sign token, ``P(e)`` a raw position,
``predicts A(n)`` the token just before ``A(n)`` (whose logits predict it).

Answers (``impacts:``): ``A(e)``, ``sign``, or a range of them (``A(n+1)..A(digits)``).
Variables (``computes:``, ``keep:``): ``NAME(e)`` for per-digit variables, ``NAME`` for the
others, several joined with ``|`` for a polysemantic node. Layers: ``e`` or ``e..e``.
Templates (ids, class names): text with ``{e}`` holes, e.g. ``SV{n-1}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from circuitspec.errors import TemplateError, closest

MAX_TEXT = 300  # longest template string accepted
MAX_DEPTH = 32  # deepest nesting of parentheses / unary signs
MAX_VALUE = 10**9  # |intermediate results| beyond this are an error (no runaway arithmetic)

BUILTINS = ("digits", "layers", "heads", "last")
FUNCTIONS = ("min", "max")
POSITION_WORDS = ("D", "D'", "A", "P", "OPR", "=", "sign", "predicts")


def _did_you_mean(name: str, allowed) -> str:
    allowed = list(allowed)
    guess = closest(name, allowed)
    hint = f"did you mean {guess!r}? " if guess else ""
    return hint + "allowed: " + ", ".join(allowed)


# ----------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"\s*(?:(?P<int>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\.\.|//|->|[-+*%(),'=|{}]))"
)


@dataclass(frozen=True)
class Tok:
    kind: str  # 'int', 'name', 'op', 'end'
    text: str
    col: int


def tokenize(text: str) -> list[Tok]:
    if not isinstance(text, str):
        raise TemplateError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise TemplateError(f"template is too long ({len(text)} characters, at most {MAX_TEXT})")
    toks: list[Tok] = []
    i = 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = _TOKEN.match(text, i)
        if not m:
            j = i
            while j < len(text) and text[j].isspace():
                j += 1
            raise TemplateError(f"unexpected character {text[j]!r} at column {j + 1} of {text!r}")
        kind = m.lastgroup
        toks.append(Tok(kind, m.group(kind), m.start(kind)))
        i = m.end()
    toks.append(Tok("end", "", len(text)))
    return toks


# ----------------------------------------------------------------------------- trees
# Integer expression trees are tuples: ('int', v) | ('name', s) | ('neg', e) |
# ('bin', op, a, b) | ('call', fname, (args...)).


def names_in(tree) -> set[str]:
    """Free names of an integer expression tree."""
    kind = tree[0]
    if kind == "int":
        return set()
    if kind == "name":
        return {tree[1]}
    if kind == "neg":
        return names_in(tree[1])
    if kind == "bin":
        return names_in(tree[2]) | names_in(tree[3])
    out: set[str] = set()
    for a in tree[2]:
        out |= names_in(a)
    return out


def show(tree) -> str:
    """Canonical text of an integer expression tree."""
    kind = tree[0]
    if kind == "int":
        return str(tree[1])
    if kind == "name":
        return tree[1]
    if kind == "neg":
        inner = show(tree[1])
        return f"-{inner}" if tree[1][0] in ("int", "name", "call") else f"-({inner})"
    if kind == "bin":
        op, a, b = tree[1], tree[2], tree[3]
        prec = {"+": 1, "-": 1, "*": 2, "//": 2, "%": 2}
        sa, sb = show(a), show(b)
        if a[0] == "bin" and prec[a[1]] < prec[op]:
            sa = f"({sa})"
        if b[0] == "bin" and prec[b[1]] <= prec[op]:
            sb = f"({sb})"
        return f"{sa}{op}{sb}"
    return f"{tree[1]}(" + ", ".join(show(a) for a in tree[2]) + ")"


def evaluate(tree, env: dict[str, int]) -> int:
    """Value of an integer expression tree; unknown names and division by zero are TemplateErrors."""
    kind = tree[0]
    if kind == "int":
        value = tree[1]
    elif kind == "name":
        try:
            value = env[tree[1]]
        except KeyError:
            raise TemplateError(f"unknown name {tree[1]!r}", hint=_did_you_mean(tree[1], sorted(env))) from None
    elif kind == "neg":
        value = -evaluate(tree[1], env)
    elif kind == "bin":
        op, a, b = tree[1], evaluate(tree[2], env), evaluate(tree[3], env)
        if op == "+":
            value = a + b
        elif op == "-":
            value = a - b
        elif op == "*":
            value = a * b
        else:
            if b == 0:
                raise TemplateError(f"division by zero in {show(tree)!r}")
            value = a // b if op == "//" else a % b
    else:
        args = [evaluate(a, env) for a in tree[2]]
        value = min(args) if tree[1] == "min" else max(args)
    if abs(value) > MAX_VALUE:
        raise TemplateError(f"{show(tree)!r} evaluates to {value}, beyond +-{MAX_VALUE}")
    return value


# ----------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def at(self, text: str) -> bool:
        return self.tok.kind in ("op", "name") and self.tok.text == text

    def take(self) -> Tok:
        t = self.tok
        if t.kind != "end":
            self.i += 1
        return t

    def fail(self, expected: str, hint: str | None = None) -> TemplateError:
        t = self.tok
        found = "the end" if t.kind == "end" else repr(t.text)
        return TemplateError(
            f"bad {self.what} {self.text!r}: expected {expected} at column {t.col + 1}, found {found}", hint=hint
        )

    def expect(self, text: str) -> Tok:
        if not self.at(text):
            raise self.fail(repr(text))
        return self.take()

    def done(self) -> None:
        if self.tok.kind != "end":
            raise self.fail("the end")

    # -- integer expressions
    def expr(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TemplateError(f"bad {self.what} {self.text!r}: nested too deeply")
        left = self.term()
        while self.at("+") or self.at("-"):
            op = self.take().text
            left = ("bin", op, left, self.term())
        self.depth -= 1
        return left

    def term(self):
        left = self.unary()
        while self.at("*") or self.at("//") or self.at("%"):
            op = self.take().text
            left = ("bin", op, left, self.unary())
        return left

    def unary(self):
        if self.at("-") or self.at("+"):
            sign = self.take().text
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise TemplateError(f"bad {self.what} {self.text!r}: nested too deeply")
            inner = self.unary()
            self.depth -= 1
            if sign == "+":
                return inner
            return ("int", -inner[1]) if inner[0] == "int" else ("neg", inner)
        return self.atom()

    def atom(self):
        t = self.tok
        if t.kind == "int":
            self.take()
            if len(t.text) > 9:
                raise TemplateError(f"bad {self.what} {self.text!r}: number {t.text} is too large")
            return ("int", int(t.text))
        if t.kind == "name":
            self.take()
            if self.at("("):
                if t.text not in FUNCTIONS:
                    raise TemplateError(
                        f"bad {self.what} {self.text!r}: {t.text!r} is not a function",
                        hint="the functions are min(a, b, ...) and max(a, b, ...)",
                    )
                self.take()
                args = [self.expr()]
                while self.at(","):
                    self.take()
                    args.append(self.expr())
                self.expect(")")
                return ("call", t.text, tuple(args))
            return ("name", t.text)
        if self.at("("):
            self.take()
            inner = self.expr()
            self.expect(")")
            return inner
        raise self.fail("a number, a name or '('")

    def call_arg(self):
        self.expect("(")
        e = self.expr()
        self.expect(")")
        return e

    # -- positions
    def position_ref(self):
        t = self.tok
        if t.kind == "op" and t.text == "=":
            self.take()
            return ("=",)
        if t.kind != "name":
            raise self.fail("a position (D(n), D'(n), OPR, =, sign, A(n), predicts A(n), P(k))")
        word = t.text
        if word == "D":
            self.take()
            if self.at("'"):
                self.take()
                return ("D'", self.call_arg())
            return ("D", self.call_arg())
        if word in ("A", "P"):
            self.take()
            return (word, self.call_arg())
        if word in ("OPR", "sign"):
            self.take()
            return (word,)
        if word == "predicts":
            self.take()
            return ("predicts", self.answer_ref())
        raise TemplateError(
            f"bad {self.what} {self.text!r}: unknown position {word!r}",
            hint=_did_you_mean(word, POSITION_WORDS),
        )

    def answer_ref(self):
        t = self.tok
        if t.kind == "name" and t.text == "A":
            self.take()
            return ("A", self.call_arg())
        if t.kind == "name" and t.text == "sign":
            self.take()
            return ("sign",)
        if t.kind == "name":
            raise TemplateError(
                f"bad {self.what} {self.text!r}: unknown answer token {t.text!r}",
                hint=_did_you_mean(t.text, ["A", "sign"]) + " (write A(n) or sign)",
            )
        raise self.fail("an answer token, A(n) or sign")

    # -- variables
    def variable(self):
        t = self.tok
        if t.kind != "name":
            raise self.fail("a variable name such as SA(n)")
        self.take()
        if self.at("("):  # which variables exist, and which take a column, is the task's (spec.checks)
            return (t.text, self.call_arg())
        return (t.text, None)
