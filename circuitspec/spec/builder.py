"""Writing a hypothesis in Python: the same fields as YAML, the same validated object.

Two ways, both returning a ``Hypothesis`` equal to the one loaded from the equivalent YAML::

    Hypothesis.build("addition", task="add", nodes=[{"id": "SA{n}", ...}], edges=["ST{n} -> SV{n}"])

    (HypothesisBuilder("addition", task="add")
        .applies_to(digits="2..", layers="2..")
        .node("SA{n}", "SA(n)", for_each=EACH_DIGIT, max_heads=2, at="predicts A(n)", layers=0,
              impacts={"exactly": "A(n)"}, breaks="S0")
        .edge("SA{n} -> A{n}", for_each={"n": "0..digits-1"})
        .build())

Errors are ``SpecError`` naming the field (``nodes[0] (SA{n}).layers: ...``); there is no
file, so no line.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from circuitspec.spec.schema import Hypothesis, Where

EACH_DIGIT = {"n": "0..digits-1"}  # every digit column of the operands
EACH_ANSWER_DIGIT = {"n": "0..digits"}  # every answer digit (one more than the operands)


def _plain(value: Any) -> Any:
    """Spec objects as plain data (so built and loaded hypotheses validate the same way)."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def build(name: str, *, task: str, **fields: Any) -> Hypothesis:
    """Validate keyword fields (as in YAML) into a Hypothesis; SpecError on any problem."""
    from circuitspec.spec.loader import validate_data

    data = {"name": name, "task": task, **{k: _plain(v) for k, v in fields.items() if v is not None}}
    try:
        return validate_data(data, Where(None))
    except ValidationError:  # pragma: no cover - validate_data converts these
        raise


def attends(to: str | list[str], min_share: float) -> dict[str, Any]:
    """``attends(["D(n)", "D'(n)"], 0.3)`` -> ``{"to": [...], "min_share": 0.3}``."""
    return {"to": to, "min_share": min_share}


class HypothesisBuilder:
    """A fluent way to write a hypothesis; ``build()`` validates it."""

    def __init__(self, name: str, *, task: str, description: str = "") -> None:
        self._data: dict[str, Any] = {"name": name, "task": task}
        if description:
            self._data["description"] = description
        self._nodes: list[dict[str, Any]] = []
        self._edges: list[Any] = []

    def describe(self, text: str) -> HypothesisBuilder:
        self._data["description"] = text
        return self

    def applies_to(self, *, ops: str | list[str] | None = None, digits: Any = None, layers: Any = None, heads: Any = None) -> HypothesisBuilder:
        given = {"ops": ops, "digits": digits, "layers": layers, "heads": heads}
        self._data["applies_to"] = {k: v for k, v in given.items() if v is not None}
        return self

    def node(
        self,
        id: str,
        computes: str | list[str],
        *,
        for_each: dict[str, Any] | None = None,
        site: str | None = None,
        max_heads: int | None = None,
        at: str | list[str] | None = None,
        layers: Any = None,
        attends: dict[str, Any] | list[dict[str, Any]] | None = None,
        impacts: dict[str, Any] | None = None,
        breaks: str | list[str] | None = None,
        spares: str | list[str] | None = None,
        required: bool | None = None,
        test: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> HypothesisBuilder:
        given = dict(
            id=id, description=description, for_each=for_each, computes=computes, site=site, max_heads=max_heads,
            at=at, layers=layers, attends=attends, impacts=impacts, breaks=breaks, spares=spares, required=required,
            test=test,
        )  # fmt: skip
        self._nodes.append({k: v for k, v in given.items() if v is not None})
        return self

    def edge(
        self,
        flow: str,
        *,
        for_each: dict[str, Any] | None = None,
        optional: bool | None = None,
        test: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> HypothesisBuilder:
        given = dict(flow=flow, for_each=for_each, optional=optional, test=test, description=description)
        self._edges.append({k: v for k, v in given.items() if v is not None})
        return self

    def checks(self, *, min_faithfulness: float | None = None, min_completeness: float | None = None, minimality: bool | None = None) -> HypothesisBuilder:
        given = {"min_faithfulness": min_faithfulness, "min_completeness": min_completeness, "minimality": minimality}
        self._data["checks"] = {k: v for k, v in given.items() if v is not None}
        return self

    def build(self) -> Hypothesis:
        data = dict(self._data)
        name, task = data.pop("name"), data.pop("task")
        return build(name, task=task, **data, nodes=list(self._nodes), edges=list(self._edges))
