"""The field types of the spec schema: what each field accepts and the one form it stores.

A person writes ``at: D(n)`` or a list, ``layers: 0`` or ``"1..last"``; these normalizers turn
every accepted form into one canonical list of template strings, parsing each template on the
way (``spec.expr``) so that a syntax error surfaces at its field with a hint.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from circuitspec.spec.expr import BUILTINS, TemplateError, _did_you_mean, show
from circuitspec.spec.forms import (
    PositionSpec,
    parse_answer,
    parse_flow,
    parse_position,
    parse_range,
    parse_template,
    parse_variables,
)
from circuitspec.errors import TaskError
from circuitspec.tasks.registry import check_ref
from circuitspec.vocabulary import NODE_SITE_KINDS, OPERATIONS, NodeSiteKind, Op


# ----------------------------------------------------------------------------- normalizers


def kind_of(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"a boolean ({v})"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return f"{type(v).__name__} {v!r:.40}"


def _items(v: Any, what: str, *, allow_int: bool = False) -> list[tuple[tuple, Any]]:
    """A scalar or a list, as (subpath, item) pairs; items must be strings (or ints)."""
    pairs = [((i,), x) for i, x in enumerate(v)] if isinstance(v, list) else [((), v)]
    for sub, x in pairs:
        ok = isinstance(x, str) or (allow_int and isinstance(x, int) and not isinstance(x, bool))
        if not ok:
            raise TemplateError(f"{what}: expected text, got {kind_of(x)}", subpath=sub)
    return pairs


def _wrap(sub: tuple, fn, *args):
    try:
        return fn(*args)
    except TemplateError as err:
        raise err.under(*sub) from None


def show_ref(ref: tuple) -> str:
    word = ref[0]
    if word == "predicts":
        return "predicts " + show_ref(ref[1])
    if len(ref) == 1:
        return word
    return f"{word}({show(ref[1])})"


def show_position(spec: PositionSpec) -> str:
    return show_ref(spec.start) if spec.end is None else f"{show_ref(spec.start)}..{show_ref(spec.end)}"


def show_template(text: str) -> str:
    t = parse_template(text)
    return "".join(p if isinstance(p, str) else "{" + show(p) + "}" for p in t.parts)


def _positions(v: Any) -> list[str]:
    if isinstance(v, list) and not v:
        raise TemplateError("position list is empty", hint="leave the field out to allow every position")
    return [_wrap(sub, lambda x: show_position(parse_position(x.strip())), x) for sub, x in _items(v, "position")]


def _answers(v: Any) -> list[str]:
    if isinstance(v, list) and not v:
        raise TemplateError("answer list is empty", hint="name answer digits like A(n) or sign")
    return [_wrap(sub, lambda x: show_position(parse_answer(x.strip())), x) for sub, x in _items(v, "answer digit")]


def _layers(v: Any) -> list[str]:
    if isinstance(v, list) and not v:
        raise TemplateError("layer list is empty", hint="leave the field out to allow every layer")
    return [_wrap(sub, lambda x: parse_range(str(x).strip(), "layers").text(), x) for sub, x in _items(v, "layers", allow_int=True)]


def _variables(v: Any) -> list[str]:
    if isinstance(v, list) and not v:
        raise TemplateError("variable list is empty", hint="e.g. SA(n)")
    out: list[str] = []
    for sub, x in _items(v, "variable"):
        out.extend(_wrap(sub, lambda x: [r.text() for r in parse_variables(x.strip())], x))
    return out


def _keep(v: Any) -> list[str]:
    if isinstance(v, list) and not v:
        return []
    return _variables(v)


def _template(v: Any) -> str:
    if not isinstance(v, str):
        raise TemplateError(f"expected a name, got {kind_of(v)}", hint="e.g. SA{n}")
    return show_template(v.strip())


def _classes(v: Any) -> list[str]:
    if isinstance(v, list) and not v:
        return []
    return [_wrap(sub, lambda x: show_template(x.strip()), x) for sub, x in _items(v, "question class")]


def _flow(v: Any) -> str:
    templates = parse_flow(v)
    return " -> ".join("".join(p if isinstance(p, str) else "{" + show(p) + "}" for p in t.parts) for t in templates)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _for_each(v: Any) -> dict[str, str | list[str]]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise TemplateError(f"for_each must map names to ranges, got {kind_of(v)}", hint="e.g. for_each: {n: 0..digits-1}")
    out: dict[str, str | list[str]] = {}
    for name, dom in v.items():
        if not isinstance(name, str) or not _IDENT.fullmatch(name):
            raise TemplateError(f"for_each variable {name!r} is not a name", hint="use a short name such as n or k", subpath=(name,))
        if name in BUILTINS or name in ("min", "max"):
            raise TemplateError(
                f"for_each variable {name!r} is reserved", hint="reserved: " + ", ".join(BUILTINS + ("min", "max")), subpath=(name,)
            )
        if isinstance(dom, list):
            if not dom:
                raise TemplateError(f"for_each {name}: empty list", subpath=(name,))
            out[name] = [
                _wrap((name,) + sub, lambda x: parse_range(str(x).strip(), f"value of {name}").text(), x)
                for sub, x in _items(dom, f"for_each {name}", allow_int=True)
            ]
            for i, text in enumerate(out[name]):
                if ".." in text:
                    raise TemplateError(f"for_each {name}: a list holds single values, not ranges", subpath=(name, i))
        elif isinstance(dom, (str, int)) and not isinstance(dom, bool):
            out[name] = _wrap((name,), lambda x: parse_range(str(x).strip(), f"range of {name}").text(), dom)
        else:
            raise TemplateError(f"for_each {name}: expected a range such as 0..digits-1, got {kind_of(dom)}", subpath=(name,))
    return out


def _choice(allowed: tuple[str, ...], what: str):
    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in allowed:
            raise TemplateError(f"unknown {what} {v!r}", hint=_did_you_mean(str(v), allowed))
        return v

    return check


def _task(v: Any) -> str:
    """A built-in operation, or the import path of a plug-in task class that loads."""
    if not isinstance(v, str) or ":" not in v:
        return _choice(OPERATIONS, "task")(v)
    try:
        return check_ref(v)
    except TaskError as err:
        raise TemplateError(err.message, hint=err.hint) from None


def _ops(v: Any) -> list[str]:
    check = _choice(OPERATIONS, "operation")
    return [_wrap(sub, check, x) for sub, x in _items(v, "operation")]


def _name(v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", v):
        raise TemplateError(f"a hypothesis name uses letters, digits, '_', '.' and '-' only, got {v!r:.60}")
    return v


def _text(v: Any) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise TemplateError(f"expected text, got {kind_of(v)}")
    return v


_STR_OR_LIST = str | list[str]
Positions = Annotated[list[str], BeforeValidator(_positions, json_schema_input_type=_STR_OR_LIST)]
Answers = Annotated[list[str], BeforeValidator(_answers, json_schema_input_type=_STR_OR_LIST)]
Layers = Annotated[list[str], BeforeValidator(_layers, json_schema_input_type=int | str | list[int | str])]
Variables = Annotated[list[str], BeforeValidator(_variables, json_schema_input_type=_STR_OR_LIST)]
Keep = Annotated[list[str], BeforeValidator(_keep, json_schema_input_type=_STR_OR_LIST)]
IdTemplate = Annotated[str, BeforeValidator(_template)]
Classes = Annotated[list[str], BeforeValidator(_classes, json_schema_input_type=_STR_OR_LIST)]
Flow = Annotated[str, BeforeValidator(_flow)]
ForEach = Annotated[
    dict[str, str | list[str]], BeforeValidator(_for_each, json_schema_input_type=dict[str, int | str | list[int | str]])
]
Site = Annotated[NodeSiteKind, BeforeValidator(_choice(NODE_SITE_KINDS, "site kind"))]
Task = Annotated[str, BeforeValidator(_task)]
Ops = Annotated[list[Op], BeforeValidator(_ops, json_schema_input_type=str | list[str])]
Share = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]
Count = Annotated[int, Field(strict=True, ge=1)]
Name = Annotated[str, BeforeValidator(_name)]
Text = Annotated[str, BeforeValidator(_text)]
