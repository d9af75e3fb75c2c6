"""The hypothesis language as pydantic models: the schema is the code.

A ``Hypothesis`` names an algorithm the way the paper states it: nodes (a variable computed
at some kind of site, under location and behaviour constraints, templated over digit
columns), edges (information flow between nodes) and circuit-level checks. It is written
in YAML (``circuitspec.spec.load``) or in Python (``Hypothesis.build`` /
``HypothesisBuilder``), and ``expand`` turns it into a concrete graph for one model shape.

Every field accepts the short forms a person writes (``at: D(n)`` as well as a list,
``layers: 0`` as well as ``"1..last"``) and stores one canonical form, so that two specs
that mean the same thing compare equal. Template strings are parsed on validation
(``circuitspec.spec.expr``), so syntax errors and unknown names surface at load time with
the file, line and column and a "did you mean" hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, field_serializer, model_validator

from circuitspec.models.card import MAX_HEADS_PER_LAYER, MAX_LAYERS
from circuitspec.spec.expr import TemplateError, _did_you_mean
from circuitspec.spec.forms import parse_flow
from circuitspec.spec.checks import check_for_each, check_node, semantic_problems
from circuitspec.spec.fields import (
    Answers,
    Classes,
    Count,
    Flow,
    ForEach,
    IdTemplate,
    Keep,
    Layers,
    Name,
    Ops,
    Positions,
    Share,
    Site,
    Task,
    Text,
    Variables,
    kind_of,
)
from circuitspec.tasks.layout import MAX_DIGITS

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

    from circuitspec.vocabulary import ModelShape

MAX_HEADS = 64
MAX_PAIRS = 1_000_000
MAX_BOUND = 999_999  # applies_to bounds: the largest number the ``2..6`` text form holds, so to_yaml reloads
_BOUND_DIGITS = len(str(MAX_BOUND))


# ----------------------------------------------------------------------------- where things are


@dataclass
class Where:
    """Where an object came from: a file and the line/column of every path in it."""

    file: str | None
    locs: dict[tuple, tuple[int, int]] = field(default_factory=dict, repr=False)
    base: tuple = ()

    def sub(self, *path) -> Where:
        return Where(self.file, self.locs, self.base + tuple(path))

    def at(self, *path) -> dict[str, Any]:
        """``file``/``line``/``column`` keyword arguments for an error at ``path`` below ``base``.

        Falls back to the nearest enclosing path that has a position, then to the top of the file.
        """
        if self.file is None:
            return {}
        full = self.base + tuple(path)
        while full not in self.locs and full:
            full = full[:-1]
        line, column = self.locs.get(full, (1, 1))
        return {"file": self.file, "line": line, "column": column}


# ----------------------------------------------------------------------------- base model


class SpecModel(BaseModel):
    """Base of every spec object: unknown fields get a 'did you mean'; equality ignores provenance."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)
    _what: ClassVar[str] = "mapping"
    _where: Where | None = PrivateAttr(default=None)

    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return data

    @model_validator(mode="before")
    @classmethod
    def _check_keys(cls, data: Any) -> Any:
        if isinstance(data, cls):
            return data
        data = cls._shorthand(data)
        if not isinstance(data, dict):
            raise TemplateError(
                f"{cls._what} must be a mapping of fields, got {kind_of(data)}",
                hint="fields: " + ", ".join(cls._field_names()),
            )
        allowed = cls._field_names()
        for key in data:
            if not isinstance(key, str) or key not in allowed:
                raise TemplateError(f"unknown field {key!r} in {cls._what}", hint=_did_you_mean(str(key), allowed), subpath=(key,))
        # an empty YAML value (``edges:`` with nothing under it) means the field's default
        return {k: v for k, v in data.items() if v is not None or cls._null_ok(k)}

    @classmethod
    def _null_ok(cls, key: str) -> bool:
        info = cls.model_fields[key]
        return info.is_required() or info.default is None

    @classmethod
    def _field_names(cls) -> list[str]:
        return list(cls.model_fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BaseModel):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def where(self, *path) -> dict[str, Any]:
        """``file``/``line``/``column`` of this object (or a field below it), where known."""
        return self._where.at(*path) if self._where is not None else {}


def _dump_list(v: list[str]) -> Any:
    return v[0] if len(v) == 1 else v


def _dump_for_each(v: dict[str, str | list[str]]) -> dict[str, Any]:
    """Ranges as written; lists stay lists (``k: [0]`` is not ``k: 0``); integers as integers."""

    def one(x: str) -> Any:
        return int(x) if re.fullmatch(r"-?\d+", x) else x

    return {k: ([one(x) for x in d] if isinstance(d, list) else one(d)) for k, d in v.items()}


def _dump_layers(v: list[str] | None) -> Any:
    if v is None:
        return None
    out = [int(x) if re.fullmatch(r"-?\d+", x) else x for x in v]
    return out[0] if len(out) == 1 else out


# ----------------------------------------------------------------------------- nodes


class Attends(SpecModel):
    """An attention constraint: the node's head(s) put at least ``min_share`` of their attention,
    summed over the ``to`` tokens (and averaged over questions and over the node's heads)."""

    _what: ClassVar[str] = "attends"
    to: Positions = Field(description="tokens attended to, e.g. [D(n), D'(n)]")
    min_share: Share = Field(description="least total attention on those tokens, 0..1")

    @field_serializer("to")
    def _ser_to(self, v):
        return _dump_list(v)


class Impacts(SpecModel):
    """Which answer digits go wrong when the node is ablated: exactly these, or at least these."""

    _what: ClassVar[str] = "impacts"
    exactly: Answers | None = Field(default=None, description="ablation changes these answer digits and no others")
    at_least: Answers | None = Field(default=None, description="ablation changes at least these answer digits")

    @model_validator(mode="after")
    def _one(self) -> Impacts:
        if (self.exactly is None) == (self.at_least is None):
            raise TemplateError("impacts needs exactly one of 'exactly' or 'at_least'", hint="e.g. impacts: {exactly: [A(n)]}")
        return self

    @field_serializer("exactly", "at_least")
    def _ser(self, v):
        return None if v is None else _dump_list(v)


class CausalTest(SpecModel):
    """Thresholds of the node's interchange test (counterfactual pairs that differ in the node's variable)."""

    _what: ClassVar[str] = "test"
    min_accuracy: Share = Field(default=0.9, description="least share of pairs whose answer changes exactly as predicted")
    pairs: Count = Field(default=256, le=MAX_PAIRS, description="number of counterfactual pairs")
    keep: Keep = Field(default=[], description="variables held equal between base and source, e.g. [SC(n-1)]")
    answers: Answers | None = Field(
        default=None,
        description="compare only these answer tokens (of those the sites serve), e.g. [sign] for a site that also feeds digits "
        "by a route the causal model does not name; default: every token the sites serve",
    )

    @field_serializer("keep")
    def _ser(self, v):
        return v

    @field_serializer("answers")
    def _ser_answers(self, v):
        return None if v is None else _dump_list(v)


def _one_attends(data: Any) -> Any:
    """``attends: {to: .., min_share: ..}`` is a list of one."""
    if isinstance(data, dict) and isinstance(data.get("attends"), dict):
        data = {**data, "attends": [data["attends"]]}
    return data


class Node(SpecModel):
    """One node of the hypothesis: a variable computed at a kind of site, somewhere, somehow."""

    _what: ClassVar[str] = "node"
    id: IdTemplate = Field(description="node id, templated: SA{n}")
    description: Text = ""
    for_each: ForEach = Field(default={}, description="template variables and their ranges, e.g. {n: 0..digits-1}")
    computes: Variables = Field(description="variable(s) the node computes: SA(n), or SA(n) | MD(n) | ND(n) for a polysemantic node")
    site: Site = Field(default="head", description="head, mlp, neurons or any")
    max_heads: Count = Field(default=1, le=MAX_HEADS, description="co-located heads (same position and layer) that may jointly realise the node")
    spread: StrictBool = Field(
        default=False,
        description="the node is every allowed site that fits its constraints, patched together (one variable computed at several tokens); spread nodes may share sites",
    )
    at: Positions | None = Field(default=None, description="token positions allowed: D(n), D'(n), OPR, =, sign, A(n), predicts A(n), P(k), X..Y; all if omitted")
    layers: Layers | None = Field(default=None, description="layers allowed: 0, 1..last, [0, 2]; all if omitted")
    mlp_layers: Layers | None = Field(
        default=None,
        description="for site: any, the layers its MLPs may be in when they differ from its heads' (1..last-1: every MLP but the last; a range that ends below its start is empty)",
    )
    attends: list[Attends] = Field(default=[], description="attention constraints (heads only)")
    impacts: Impacts | None = Field(default=None, description="answer digits its ablation changes")
    breaks: Classes = Field(default=[], description="question classes that fail when it is ablated")
    spares: Classes = Field(default=[], description="question classes that still pass when it is ablated")
    required: StrictBool = Field(default=True, description="the hypothesis fails if this node cannot be placed and confirmed")
    test: CausalTest = Field(default_factory=CausalTest, description="thresholds of its interchange test")

    @model_validator(mode="before")
    @classmethod
    def _attends_list(cls, data: Any) -> Any:
        return _one_attends(data)

    @model_validator(mode="after")
    def _consistent(self) -> Node:
        check_node(self)
        return self

    @field_serializer("computes")
    def _ser_computes(self, v):
        return " | ".join(v)

    @field_serializer("at", "breaks", "spares")
    def _ser_list(self, v):
        return None if v is None else (v if not v or len(v) > 1 else v[0])

    @field_serializer("layers")
    def _ser_layers(self, v):
        return _dump_layers(v)

    @field_serializer("for_each")
    def _ser_for_each(self, v):
        return _dump_for_each(v)


class NodeOverride(SpecModel):
    """Fields to replace in an included node, found by its ``id`` (as written, e.g. ``SA{n}``)."""

    _what: ClassVar[str] = "override"
    id: IdTemplate = Field(description="id of the included node to change")
    description: Text | None = None
    for_each: ForEach | None = None
    computes: Variables | None = None
    site: Site | None = None
    max_heads: Count | None = Field(default=None, le=MAX_HEADS)
    spread: StrictBool | None = None
    at: Positions | None = None
    layers: Layers | None = None
    mlp_layers: Layers | None = None
    attends: list[Attends] | None = None
    impacts: Impacts | None = None
    breaks: Classes | None = None
    spares: Classes | None = None
    required: StrictBool | None = None
    test: CausalTest | None = None

    @model_validator(mode="before")
    @classmethod
    def _attends_list(cls, data: Any) -> Any:
        return _one_attends(data)

    def changes(self) -> dict[str, Any]:
        """The fields this override sets (an empty value, ``description:``, sets nothing)."""
        return {k: getattr(self, k) for k in self.model_fields_set if k != "id" and getattr(self, k) is not None}


class EdgeTest(SpecModel):
    """Thresholds of an edge's path-patching test (pairs that differ in the source node's variable).

    The same fields as a node's test, less ``keep``: an edge is tested on its source's pairs,
    which keep what the source node keeps.
    """

    _what: ClassVar[str] = "edge test"
    min_accuracy: Share = Field(default=0.9, description="least share of informative pairs whose answer, by the edge's route, changes exactly as predicted")
    pairs: Count = Field(default=256, le=MAX_PAIRS, description="number of counterfactual pairs per variable of the source")


class Edge(SpecModel):
    """Information flow: the target reads what the source computes.

    The claim: the source's variable reaches the target's through paths that avoid every
    other node's sites. The causal model must connect the two variables, and the edge must
    be feasible in a transformer (for some allowed sites of the two nodes, the source runs
    in an earlier sub-layer at the same position, or in an earlier layer at an earlier
    position: ``circuitspec.spec.instance.can_feed``); both are checked at expansion. On a
    model, the edge is tested by path patching (``circuitspec.match.edges``).
    """

    _what: ClassVar[str] = "edge"
    flow: Flow = Field(description="SOURCE -> TARGET (or a chain A -> B -> C), templated: ST{n} -> SV{n}")
    for_each: ForEach = Field(default={}, description="template variables and their ranges")
    optional: StrictBool = Field(
        default=False,
        description="dropped where an endpoint does not exist after expansion (e.g. SV{n-1} for n = 0) and not required to be confirmed",
    )
    route: Literal["target", "answer"] = Field(
        default="target",
        description="target: the source's variable reaches the target through the target's sites alone; answer: it reaches the "
        "answer tokens the target serves through the target's sites or around them (for an edge into the node that writes an answer "
        "digit: the last MLP and the direct path to the logits), still avoiding the other nodes between the two",
    )
    test: EdgeTest = Field(default_factory=lambda: EdgeTest(), description="thresholds of its path-patching test")
    description: Text = ""

    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"flow": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _consistent(self) -> Edge:
        known = check_for_each(self.for_each)
        for i, t in enumerate(parse_flow(self.flow)):
            bad = t.names - known
            if bad:
                b = sorted(bad)[0]
                raise TemplateError(
                    f"unknown name {b!r} in edge {self.flow!r}",
                    hint=_did_you_mean(b, sorted(known)) + f" (declare it: for_each: {{{b}: 0..digits-1}})",
                    subpath=("flow",),
                )
        return self

    @field_serializer("for_each")
    def _ser_for_each(self, v):
        return _dump_for_each(v)


# ----------------------------------------------------------------------------- hypothesis


class Bounds(SpecModel):
    """An inclusive integer range; written ``2..``, ``..4``, ``3..6``, ``5`` or ``{min: 2, max: 6}``."""

    _what: ClassVar[str] = "range"
    min: Annotated[int, Field(strict=True, ge=0, le=MAX_BOUND)] | None = None
    max: Annotated[int, Field(strict=True, ge=0, le=MAX_BOUND)] | None = None

    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, int) and not isinstance(data, bool):
            return {"min": data, "max": data}
        if isinstance(data, str) and re.fullmatch(rf"\s*\d{{1,{_BOUND_DIGITS}}}\s*", data):
            return {"min": int(data), "max": int(data)}
        if isinstance(data, str):
            m = re.fullmatch(rf"\s*(\d{{1,{_BOUND_DIGITS}}})?\s*\.\.\s*(\d{{1,{_BOUND_DIGITS}}})?\s*", data)
            if not m or (m[1] is None and m[2] is None):
                raise TemplateError(f"bad range {data!r}", hint="write 2.., ..4, 3..6 or a single number")
            return {k: int(g) for k, g in (("min", m[1]), ("max", m[2])) if g is not None}
        return data

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise TemplateError(f"empty range {self.min}..{self.max}")
        return self

    def __contains__(self, value: int) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def text(self) -> str:
        if self.min is not None and self.min == self.max:
            return str(self.min)
        return f"{'' if self.min is None else self.min}..{'' if self.max is None else self.max}"


class AppliesTo(SpecModel):
    """Which models the hypothesis is about (a model outside these is 'not applicable', not 'fails')."""

    _what: ClassVar[str] = "applies_to"
    ops: Ops | None = Field(default=None, description="model operations (add, sub, mix); the hypothesis's task if omitted")
    digits: Bounds = Field(default_factory=Bounds)
    layers: Bounds = Field(default_factory=Bounds)
    heads: Bounds = Field(default_factory=Bounds)

    @model_validator(mode="after")
    def _possible(self) -> AppliesTo:
        for what, bounds, limit in (("digits", self.digits, MAX_DIGITS), ("layers", self.layers, MAX_LAYERS), ("heads", self.heads, MAX_HEADS_PER_LAYER)):
            if bounds.min is not None and bounds.min > limit:
                raise TemplateError(
                    f"{what} {bounds.text()} excludes every model: circuitspec handles at most {limit} {what}",
                    hint=f"write a range that starts at or below {limit}",
                    subpath=(what,),
                )
        return self

    @field_serializer("digits", "layers", "heads")
    def _ser(self, v: Bounds):
        return v.text()


class Checks(SpecModel):
    """Circuit-level checks on the whole placed hypothesis."""

    _what: ClassVar[str] = "checks"
    min_faithfulness: Share | None = Field(default=None, description="least accuracy of the model with everything outside the circuit ablated")
    min_completeness: Share | None = Field(default=None, description="least share of the model's behaviour the circuit accounts for")
    minimality: StrictBool = Field(default=False, description="every placed site must be necessary")


class Hypothesis(SpecModel):
    """An algorithm hypothesis: nodes, edges and checks (see the module docstring)."""

    _what: ClassVar[str] = "hypothesis"
    name: Name = Field(description="short name, e.g. addition")
    description: Text = ""
    task: Task = Field(description="the task whose questions the hypothesis explains: add, sub or mix, or a task class's import path (module:Class)")
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
    include: list[str] = Field(default=[], description="other spec files (relative to this one) whose nodes and edges this one starts from")
    override: list[NodeOverride] = Field(default=[], description="changes to included nodes")
    nodes: list[Node] = []
    edges: list[Edge] = []
    checks: Checks = Field(default_factory=Checks)
    explains: Classes = Field(
        default=[],
        description="question classes the algorithm claims to answer (default: all); interchange pairs and "
        "circuit metrics are drawn from these classes only",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Hypothesis:
        problem = next(iter(semantic_problems(self)), None)
        if problem is not None:
            path, message, hint = problem
            raise TemplateError(message, hint=hint, subpath=path)
        return self

    # -- convenience API (implemented in loader / builder / expand)
    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema of spec files (what editors use to autocomplete)."""
        schema = cls.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = "circuitspec hypothesis"
        return schema

    @classmethod
    def load(cls, path, *, include_root=None) -> Hypothesis:
        from circuitspec.spec.loader import load

        return load(path, include_root=include_root)

    @classmethod
    def from_yaml(cls, text: str, *, file: str | None = None, base_dir=None, include_root=None) -> Hypothesis:
        from circuitspec.spec.loader import loads

        return loads(text, file=file, base_dir=base_dir, include_root=include_root)

    def to_yaml(self) -> str:
        from circuitspec.spec.loader import dumps

        return dumps(self)

    @classmethod
    def build(cls, name: str, *, task: str, **fields: Any) -> Hypothesis:
        """The Python way to write a hypothesis: same fields as YAML (nodes as dicts or Node objects)."""
        from circuitspec.spec.builder import build

        return build(name, task=task, **fields)

    def expand(self, shape: ModelShape) -> nx.DiGraph:
        from circuitspec.spec.expand import expand

        return expand(self, shape)

    def applies(self, shape: ModelShape):
        from circuitspec.spec.shape import applies_to

        return applies_to(self, shape)
