"""Expansion: a Hypothesis against one model shape becomes a concrete networkx DiGraph.

Each graph node is a concrete node id (``SA3``) whose ``instance`` attribute is a
``NodeInstance``: the variables with their digit columns, the allowed token positions and
layers as integers, the behaviour constraints with answer digits named as in
``Layout.answer_labels`` (``"A3"``, ``"sign"``), the test thresholds. Graph attributes:
``name``, ``shape`` (the ``ModelShape``), ``checks`` (the circuit-level ``Checks``),
``explains`` (the question classes the hypothesis claims; empty = all).
Edge attributes: ``required`` (False for optional edges), ``flow`` (the template it came
from), ``min_accuracy`` and ``n_pairs`` (its path-patching test).

Rules (errors are SpecErrors at the template's line in the spec file):

- ``for_each`` ranges are inclusive; later variables may use earlier ones
  (``{n: 0..digits-1, k: 0..n}``); a range whose end is below its start is empty.
- A hypothesis expands to at most ``MAX_INSTANCES`` nodes and edges, all templates together.
- Every expanded id must be unique; positions must exist for the model's digit count and
  layers must lie in ``0..layers-1``; a node's ``max_heads`` may not exceed the heads per layer.
- A position or answer range ``X..Y`` covers X, Y and everything between, in either order.
- ``keep`` variables whose digit column does not exist (``SC(n-1)`` at n = 0) are dropped:
  there is nothing to hold equal.
- An edge whose endpoint does not exist after expansion (``SV{n-1}`` at n = 0) is dropped if
  the edge is ``optional: true`` and is an error otherwise (naming the edge and the missing id).
- Edge meaning (``can_feed``): the target reads what the source computes. A transformer runs
  its sub-layers in the order L0 attention, L0 MLP, L1 attention, L1 MLP, ...; the residual
  stream carries information forward at one position, and only attention moves it to a later
  position. So a site (position p, layer l, kind k) can feed a site (q, m, k') iff
  ``p == q`` and it runs in an earlier sub-layer (``l < m``, or ``l == m`` with a head
  feeding the MLP / neurons), or ``p < q`` and ``l < m`` (an attention layer after the
  source, up to and including the target's, moves it across). An edge is accepted when some
  allowed placement of both nodes satisfies this; the matcher enforces it on the chosen sites.
- An edge also claims that the source's variable can change the target's in the task's
  causal model (``tasks.dag.reaches``; a node computing the same variable counts): an edge
  between variables the causal model does not connect could never be confirmed.
- The graph must be acyclic.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from circuitspec.errors import SpecError, TaskError, closest
from circuitspec.spec.expr import TemplateError, evaluate
from circuitspec.spec.forms import (
    PositionSpec,
    parse_answer,
    parse_flow,
    parse_position,
    parse_range,
    parse_template,
    parse_variables,
)
from circuitspec.spec.instance import NodeInstance, can_feed, span_text
from circuitspec.spec.schema import Edge, Hypothesis, Node
from circuitspec.spec.shape import applies_to, as_shape, shape_text
from circuitspec.tasks.registry import TaskVocabulary, vocabulary
from circuitspec.vocabulary import ModelShape, key_text

MAX_INSTANCES = 20_000  # expanded nodes and edges, all templates together (bounds check time and memory)


class _Ctx:
    def __init__(self, shape: ModelShape) -> None:
        self.shape = shape
        self.vocabulary = vocabulary(shape.op)
        self.layout = self.vocabulary.layout(shape.digits, shape.layout)
        self.env = {
            "digits": shape.digits,
            "layers": shape.n_layers,
            "heads": shape.n_heads,
            "last": shape.n_layers - 1,
        }
        labels = self.layout.answer_labels
        self.answer_label = dict(zip(self.layout.answer_positions, labels))


def _bindings(for_each: dict[str, Any], env: dict[str, int], budget: int = MAX_INSTANCES) -> list[dict[str, int]]:
    """All assignments of the for_each variables, in order (later ranges may use earlier names);
    more than ``budget`` (what is left of MAX_INSTANCES after the templates before) is an error."""
    out: list[dict[str, int]] = [{}]
    for name, dom in for_each.items():
        nxt: list[dict[str, int]] = []
        for b in out:
            scope = {**env, **b}
            if isinstance(dom, list):
                values = [evaluate(parse_range(t).lo, scope) for t in dom]
            else:
                r = parse_range(dom)
                lo = evaluate(r.lo, scope)
                hi = lo if r.hi is None else evaluate(r.hi, scope)
                if hi - lo + 1 > budget:
                    raise TemplateError(f"for_each {name}: range {lo}..{hi} is too long", hint=_too_many(budget), subpath=("for_each", name))
                values = list(range(lo, hi + 1))
            for v in values:
                nxt.append({**b, name: v})
            if len(nxt) > budget:
                raise TemplateError(f"for_each expands to more than {budget} instances", hint=_too_many(budget), subpath=("for_each",))
        out = nxt
    return out


def _too_many(budget: int) -> str:
    return f"a hypothesis expands to at most {MAX_INSTANCES} nodes and edges in all; {budget} are left for this template"


def _resolve_ref(ref: tuple, scope: dict[str, int], ctx: _Ctx) -> int:
    try:
        return _place(ref, scope, ctx)
    except TaskError as err:  # a position the task's layout does not have
        raise TemplateError(err.message, hint=err.hint) from None


def _place(ref: tuple, scope: dict[str, int], ctx: _Ctx) -> int:
    word, lay = ref[0], ctx.layout
    if word == "D":
        n = evaluate(ref[1], scope)
        return lay.d(n)
    if word == "D'":
        n = evaluate(ref[1], scope)
        return lay.d_prime(n)
    if word == "A":
        n = evaluate(ref[1], scope)
        return lay.a(n)
    if word == "P":
        k = evaluate(ref[1], scope)
        if not 0 <= k < ctx.shape.n_ctx:
            raise TemplateError(f"position P({k}) is outside the model's context 0..{ctx.shape.n_ctx - 1}")
        return k
    if word == "OPR":
        return lay.opr
    if word == "=":
        return lay.equals
    if word == "sign":
        return lay.sign
    if word == "predicts":
        return _resolve_ref(ref[1], scope, ctx) - 1
    raise TemplateError(f"unknown position {word!r}")  # parse_position admits no other words


def _resolve_span(spec: PositionSpec, scope: dict[str, int], ctx: _Ctx) -> list[int]:
    a = _resolve_ref(spec.start, scope, ctx)
    if spec.end is None:
        return [a]
    b = _resolve_ref(spec.end, scope, ctx)
    return list(range(min(a, b), max(a, b) + 1))


def _positions(texts: list[str], scope, ctx: _Ctx, field: str) -> list[int]:
    out: set[int] = set()
    for i, t in enumerate(texts):
        try:
            out.update(_resolve_span(parse_position(t), scope, ctx))
        except TemplateError as err:
            raise TemplateError(err.message, hint=err.hint, subpath=(field, i)) from None
    return sorted(out)


def _variables(texts: list[str], scope, ctx: _Ctx, field: tuple, *, drop_missing: bool) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for i, t in enumerate(texts):
        ref = parse_variables(t)[0]
        var = ctx.vocabulary.variables.get(ref.name)
        if var is None:
            raise TemplateError(f"variable {ref.name} does not exist in {ctx.shape.op} models", subpath=field + (i,))
        if ref.arg is None:
            key = (ref.name, None)
        else:
            n = evaluate(ref.arg, scope)
            allowed = var.digit_range(ctx.shape.digits)
            if n not in allowed:
                if drop_missing:
                    continue
                raise TemplateError(
                    f"{ref.name}({n}) does not exist with {ctx.shape.digits} digits",
                    hint=f"{ref.name}(n) needs {allowed.start} <= n <= {allowed.stop - 1}",
                    subpath=field + (i,),
                )
            key = (ref.name, n)
        if key not in out:
            out.append(key)
    return out


def _answers(texts: list[str], scope, ctx: _Ctx, field: tuple) -> list[str]:
    out: list[str] = []
    for i, t in enumerate(texts):
        try:
            for p in _resolve_span(parse_answer(t), scope, ctx):
                label = ctx.answer_label.get(p)
                if label is None:  # unreachable: answer refs resolve to answer tokens
                    raise TemplateError(f"{t!r} is not an answer token")
                if label not in out:
                    out.append(label)
        except TemplateError as err:
            raise err.under(*field, i) from None
    order = {label: k for k, label in enumerate(ctx.layout.answer_labels)}
    return sorted(out, key=order.__getitem__)


def _classes(texts: list[str], scope, ctx: _Ctx, field: str) -> list[str]:
    out: list[str] = []
    allowed = list(ctx.vocabulary.classes)
    for i, t in enumerate(texts):
        name = parse_template(t).render(scope)
        if name not in allowed:
            guess = closest(name, allowed)
            raise TemplateError(
                f"unknown question class {name!r} for {ctx.shape.op} models",
                hint=(f"did you mean {guess!r}? " if guess else "") + "allowed: " + ", ".join(allowed),
                subpath=(field, i),
            )
        if name not in out:
            out.append(name)
    return out


def _instance(node: Node, binding: dict[str, int], ctx: _Ctx) -> NodeInstance:
    scope = {**ctx.env, **binding}
    shape = ctx.shape
    node_id = _sub(("id",), lambda: parse_template(node.id).render(scope))
    variables = _variables(node.computes, scope, ctx, ("computes",), drop_missing=False)
    positions = _positions(node.at, scope, ctx, "at") if node.at is not None else list(range(shape.n_ctx))
    layers = list(range(shape.n_layers)) if node.layers is None else _layers(node.layers, scope, shape, "layers")
    mlp_layers = None if node.mlp_layers is None else _layers(node.mlp_layers, scope, shape, "mlp_layers", empty_ok=True)
    if node.max_heads > shape.n_heads:
        raise TemplateError(
            f"max_heads {node.max_heads} exceeds the model's {shape.n_heads} heads per layer", subpath=("max_heads",)
        )
    attends = []
    for j, a in enumerate(node.attends):
        try:
            attends.append((_positions(a.to, scope, ctx, "to"), a.min_share))
        except TemplateError as err:
            raise err.under("attends", j) from None
    exactly = at_least = None
    if node.impacts is not None:
        if node.impacts.exactly is not None:
            exactly = _answers(node.impacts.exactly, scope, ctx, ("impacts", "exactly"))
        if node.impacts.at_least is not None:
            at_least = _answers(node.impacts.at_least, scope, ctx, ("impacts", "at_least"))
    breaks = _classes(node.breaks, scope, ctx, "breaks")
    spares = _classes(node.spares, scope, ctx, "spares")
    both = set(breaks) & set(spares)
    if both:
        raise TemplateError(f"class {sorted(both)[0]} is both broken and spared", subpath=("spares",))
    keep = _variables(node.test.keep, scope, ctx, ("test", "keep"), drop_missing=True)
    test_answers = None if node.test.answers is None else _answers(node.test.answers, scope, ctx, ("test", "answers"))
    return NodeInstance(
        id=node_id,
        template=node.id,
        bindings=dict(binding),
        variables=variables,
        site=node.site,
        max_heads=node.max_heads,
        spread=node.spread,
        positions=positions,
        layers=layers,
        mlp_layers=mlp_layers,
        attends=attends,
        impacts_exactly=exactly,
        impacts_at_least=at_least or [],
        breaks=breaks,
        spares=spares,
        required=node.required,
        min_accuracy=node.test.min_accuracy,
        n_pairs=node.test.pairs,
        keep=keep,
        description=node.description,
        test_answers=test_answers,
    )


def _layers(texts: list[str], scope, shape, field: str, *, empty_ok: bool = False) -> list[int]:
    """The layers a list of ranges names. A range written high to low is read low to high, except
    where ``empty_ok`` (``mlp_layers: 1..last-1`` names no MLP in a 2-layer model)."""
    found: set[int] = set()
    for i, t in enumerate(texts):
        r = parse_range(t)
        lo = _sub((field, i), lambda: evaluate(r.lo, scope))
        hi = lo if r.hi is None else _sub((field, i), lambda: evaluate(r.hi, scope))
        if empty_ok and hi < lo:
            continue
        lo, hi = min(lo, hi), max(lo, hi)
        if lo < 0 or hi >= shape.n_layers:
            bad = lo if lo < 0 else hi
            raise TemplateError(
                f"layer {bad} is outside the model (layers 0..{shape.n_layers - 1})",
                hint="use 'last' for the model's last layer, e.g. 1..last",
                subpath=(field, i),
            )
        found.update(range(lo, hi + 1))
    return sorted(found)


def _sub(path: tuple, fn):
    try:
        return fn()
    except TemplateError as err:
        raise err.under(*path) from None


def _binding_text(binding: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in binding.items())


def _error(obj, what: str, err: TemplateError, binding: dict[str, int] | None) -> SpecError:
    context = f" (with {_binding_text(binding)})" if binding else ""
    return SpecError(f"{what}{context}: {err.message}", hint=err.hint, **obj.where(*err.subpath))


def expand(h: Hypothesis, shape: Any, *, check_applies: bool = True) -> nx.DiGraph:
    """The concrete graph of ``h`` for models of this shape (a ``ModelShape`` or a model card)."""
    shape = as_shape(shape)
    if check_applies:
        ok = applies_to(h, shape)
        if not ok:
            raise SpecError(
                f"hypothesis {h.name!r} does not apply to {shape_text(shape)} models: {ok.reason}",
                hint="pick a model inside applies_to, or widen applies_to",
                **h.where("applies_to"),
            )
    ctx = _Ctx(shape)
    if shape.n_ctx != ctx.layout.n_ctx:
        raise SpecError(
            f"the model's context is {shape.n_ctx} tokens, but {shape.digits}-digit questions take {ctx.layout.n_ctx}",
            **h.where(),
        )
    graph = nx.DiGraph(name=h.name, shape=shape, checks=h.checks, explains=list(h.explains))
    budget = _add_nodes(h, ctx, graph)
    for edge in h.edges:
        budget = _add_edges(edge, ctx, graph, budget)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        text = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        first = graph.edges[cycle[0]]["flow"]
        owner = next((e for e in h.edges if e.flow == first), h)
        raise SpecError(f"the edges form a cycle: {text}", hint="information flows one way: remove one of these edges", **owner.where("flow"))
    return graph


def _add_nodes(h: Hypothesis, ctx: _Ctx, graph: nx.DiGraph) -> int:
    """Every node template's instances; returns the instance budget left for the edges."""
    made_by: dict[str, Node] = {}
    budget = MAX_INSTANCES
    for node in h.nodes:
        try:
            bindings = _bindings(node.for_each, ctx.env, budget)
        except TemplateError as err:
            raise _error(node, f"node {node.id}", err, None) from None
        budget -= len(bindings)
        for binding in bindings:
            try:
                inst = _instance(node, binding, ctx)
            except TemplateError as err:
                raise _error(node, f"node {node.id}", err, binding) from None
            if inst.id in graph:
                other = made_by[inst.id]
                raise SpecError(
                    f"node {node.id} (with {_binding_text(binding)}) makes id {inst.id!r}, which {other.id} already made",
                    hint="give the templates distinct ids",
                    **node.where("id"),
                )
            made_by[inst.id] = node
            graph.add_node(inst.id, instance=inst)
    return budget


def _add_edges(edge: Edge, ctx: _Ctx, graph: nx.DiGraph, budget: int) -> int:
    """One edge template's instances (a chain ``A -> B -> C`` is one edge per link); returns the budget left."""
    chain = parse_flow(edge.flow)
    try:
        bindings = _bindings(edge.for_each, ctx.env, budget // max(1, len(chain) - 1))
    except TemplateError as err:
        raise _error(edge, f"edge {edge.flow}", err, None) from None
    for binding in bindings:
        scope = {**ctx.env, **binding}
        try:
            ids = [t.render(scope) for t in chain]
        except TemplateError as err:
            raise _error(edge, f"edge {edge.flow}", TemplateError(err.message, hint=err.hint, subpath=("flow",)), binding) from None
        missing = [i for i in ids if i not in graph]
        if missing:
            if edge.optional:
                continue
            guess = closest(missing[0], list(graph.nodes))
            raise SpecError(
                f"edge {edge.flow} (with {_binding_text(binding)}): node {missing[0]!r} does not exist",
                hint=(f"did you mean {guess!r}? " if guess else "")
                + "mark the edge 'optional: true' to drop it where an endpoint is missing, or narrow its for_each",
                **edge.where("flow"),
            )
        for a, b in zip(ids, ids[1:]):
            _add_link(edge, binding, graph, a, b)
    return budget - len(bindings) * max(1, len(chain) - 1)


def _add_link(edge: Edge, binding: dict[str, int], graph: nx.DiGraph, a: str, b: str) -> None:
    """The edge ``a -> b``, refused where no placement could carry information from a to b."""
    if a == b:
        raise SpecError(f"edge {edge.flow} (with {_binding_text(binding)}) joins {a} to itself", **edge.where("flow"))
    src, dst = graph.nodes[a]["instance"], graph.nodes[b]["instance"]
    if not can_feed(src, dst):
        raise SpecError(
            f"edge {a} -> {b} cannot carry information in a transformer: {a} is at "
            f"{span_text(src.positions, 'P')} in layers {span_text(src.layers)} ({src.site}), {b} at "
            f"{span_text(dst.positions, 'P')} in layers {span_text(dst.layers)} ({dst.site})",
            hint="the source must run in an earlier sub-layer at the same position, or in an earlier layer at an earlier position",
            **edge.where("flow"),
        )
    _check_causal(edge, a, b, src, dst, vocabulary(graph.graph["shape"].op), graph.graph["shape"].digits)
    test = {"min_accuracy": edge.test.min_accuracy, "n_pairs": edge.test.pairs}
    if graph.has_edge(a, b):  # written twice: the stricter test stands
        data = graph.edges[a, b]
        data["required"] = data["required"] or not edge.optional
        data.update({k: max(data[k], v) for k, v in test.items()})
        data["route"] = "target" if "target" in (data["route"], edge.route) else "answer"
    else:
        graph.add_edge(a, b, required=not edge.optional, flow=edge.flow, route=edge.route, **test)


def _check_causal(edge: Edge, a: str, b: str, src: NodeInstance, dst: NodeInstance, voc: TaskVocabulary, digits: int) -> None:
    """A SpecError unless some variable of ``a`` can change some variable of ``b`` in the causal model."""
    if any(voc.reaches(u, v, digits) for u in src.variables for v in dst.variables):
        return
    ups = sorted({key_text(p) for v in dst.variables for p in voc.ancestors(v, digits) if p[0] != "OPR"})
    raise SpecError(
        f"edge {a} -> {b}: {a}'s {' | '.join(map(key_text, src.variables))} cannot change "
        f"{b}'s {' | '.join(map(key_text, dst.variables))} in the task's causal model",
        hint=(f"{b}'s variables are computed from {', '.join(ups[:8])}{' ...' if len(ups) > 8 else ''}; " if ups else f"{b}'s variables depend on no other variable; ")
        + "point the edge at a node that reads this variable, or remove it",
        **edge.where("flow"),
    )
