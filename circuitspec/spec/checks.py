"""Rules a spec must meet beyond each field's own type: names in scope, site rules, task vocabulary.

``check_node`` runs when a node validates (and after an override changes it); ``semantic_problems``
needs the whole hypothesis. Problems are ``TemplateError`` (with a subpath) or (path, message, hint).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


from circuitspec.spec.expr import BUILTINS, TemplateError, _did_you_mean
from circuitspec.spec.forms import parse_answer, parse_position, parse_range, parse_template, parse_variables
from circuitspec.tasks.registry import is_builtin, vocabulary
from circuitspec.vocabulary import VARIABLES

if TYPE_CHECKING:  # pragma: no cover
    from circuitspec.spec.schema import Hypothesis, Node, NodeOverride


def _node_names(node: Node | NodeOverride) -> list[tuple[tuple, set[str]]]:
    """(subpath, free names) of every template in a node."""
    out: list[tuple[tuple, set[str]]] = []
    if node.id is not None:
        out.append((("id",), parse_template(node.id).names))
    for i, v in enumerate(node.computes or []):
        out.append((("computes", i), parse_variables(v)[0].names))
    for i, v in enumerate(node.at or []):
        out.append((("at", i), parse_position(v).names))
    for i, v in enumerate(node.layers or []):
        out.append((("layers", i), parse_range(v).names))
    for j, a in enumerate(node.attends or []):
        for i, v in enumerate(a.to):
            out.append((("attends", j, "to", i), parse_position(v).names))
    if node.impacts is not None:
        for key in ("exactly", "at_least"):
            for i, v in enumerate(getattr(node.impacts, key) or []):
                out.append((("impacts", key, i), parse_answer(v).names))
    for key in ("breaks", "spares"):
        for i, v in enumerate(getattr(node, key) or []):
            out.append(((key, i), parse_template(v).names))
    if node.test is not None:
        for i, v in enumerate(node.test.keep):
            out.append((("test", "keep", i), parse_variables(v)[0].names))
    return out


def check_for_each(for_each: dict[str, Any]) -> set[str]:
    """Each range may use the builtins and the variables declared before it; returns all names."""
    known = set(BUILTINS)
    for name, dom in for_each.items():
        texts = dom if isinstance(dom, list) else [dom]
        for text in texts:
            bad = parse_range(text).names - known
            if bad:
                b = sorted(bad)[0]
                raise TemplateError(
                    f"for_each {name}: unknown name {b!r} in {text!r}",
                    hint=_did_you_mean(b, sorted(known)) + " (a range may use the variables declared before it)",
                    subpath=("for_each", name),
                )
        known.add(name)
    return known


def check_node(node: Node) -> None:
    """Cross-field rules of one node (raised as TemplateError with a subpath)."""
    known = check_for_each(node.for_each)
    for sub, names in _node_names(node):
        bad = names - known
        if bad:
            b = sorted(bad)[0]
            hint = _did_you_mean(b, sorted(known))
            if b not in BUILTINS:
                hint += f" (declare it: for_each: {{{b}: 0..digits-1}})"
            raise TemplateError(f"unknown name {b!r}", hint=hint, subpath=sub)
    if node.attends and node.site not in ("head", "any"):
        raise TemplateError(
            f"only attention heads attend; this node's site is {node.site!r}", hint="use site: head or drop attends", subpath=("attends",)
        )
    if node.max_heads > 1 and node.site not in ("head", "any"):
        raise TemplateError(
            f"max_heads applies to heads; this node's site is {node.site!r}", hint="use site: head or drop max_heads", subpath=("max_heads",)
        )
    if node.mlp_layers is not None and node.site != "any":
        raise TemplateError(
            f"mlp_layers sets the MLPs' layers of a site: any node; this node's site is {node.site!r}",
            hint="use layers, or site: any", subpath=("mlp_layers",),
        )
    if node.spread and node.max_heads > 1:
        raise TemplateError(
            "max_heads has no effect on a spread node (it takes every allowed head that fits)", hint="drop max_heads or spread", subpath=("max_heads",)
        )
    if node.spread and node.site == "neurons":
        raise TemplateError("a neurons node is a searched neuron set and cannot be spread", hint="use site: mlp or any", subpath=("spread",))
    both = set(node.breaks) & set(node.spares)
    if both:
        raise TemplateError(f"class {sorted(both)[0]!r} is both in breaks and in spares", subpath=("spares",))


def _variable_problem(ref, voc) -> tuple[str, str | None] | None:
    """(message, hint) when the task has no such variable, or it is written with the wrong arity."""
    var = voc.variables.get(ref.name)
    if var is None:
        if ref.name in VARIABLES and is_builtin(voc.name):  # another operation's variable
            return f"variable {ref.name} is not part of {voc.name!r} ({VARIABLES[ref.name].meaning})", f"variables for {voc.name}: " + ", ".join(voc.variables)
        return f"unknown variable {ref.name!r}", _did_you_mean(ref.name, voc.variables)
    if var.per_digit and ref.arg is None:
        return f"variable {ref.name} needs a digit column, e.g. {ref.name}(n)", f"write {ref.name}(n)"
    if not var.per_digit and ref.arg is not None:
        return f"variable {ref.name} takes no digit column", f"write {ref.name} alone"
    return None


def semantic_problems(h: Hypothesis):
    """Rules that need the whole hypothesis: unique ids, variables and classes valid for the task.

    Yields (path, message, hint); the first one is raised by validation and by the loader.
    """
    voc = vocabulary(h.task)
    classes = list(voc.classes)
    seen: dict[str, int] = {}
    for i, node in enumerate(h.nodes):
        if node.id in seen:
            yield ("nodes", i, "id"), f"node id {node.id!r} is used twice (nodes[{seen[node.id]}] and nodes[{i}])", None
        seen.setdefault(node.id, i)
    for kind, items in (("nodes", h.nodes), ("override", h.override)):
        for i, node in enumerate(items):
            for field, texts in (("computes",), node.computes or []), (("test", "keep"), (node.test.keep if node.test else None) or []):
                for j, v in enumerate(texts):
                    for ref in parse_variables(v):
                        problem = _variable_problem(ref, voc)
                        if problem:
                            yield (kind, i, *field, j), *problem
            for key in ("breaks", "spares"):
                for j, v in enumerate(getattr(node, key) or []):
                    t = parse_template(v)
                    if t.is_constant and v not in classes:
                        yield (kind, i, key, j), f"unknown question class {v!r} for {h.task!r}", _did_you_mean(v, classes)
    for j, v in enumerate(h.explains):
        if v not in classes:
            yield ("explains", j), f"unknown question class {v!r} for {h.task!r}", _did_you_mean(v, classes)
    ids = [o.id for o in h.override]
    for i, oid in enumerate(ids):
        if oid in ids[:i]:
            yield ("override", i, "id"), f"node {oid!r} is overridden twice", None
    if h.override and not h.include:
        yield ("override",), "override changes included nodes, but nothing is included", "add include: [other.yaml]"
    for i, inc in enumerate(h.include):
        if not isinstance(inc, str) or not inc.strip():
            yield ("include", i), "include needs a file name", None
