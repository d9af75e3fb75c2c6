"""The Task protocol: what the rest of circuitspec needs to know about a task.

A task is both the data source and the high-level causal model: it computes the
semantic variables of a question, and the answer a question would have if some of
those variables were forced to other values. Every interchange test takes its exact
prediction from here.

Questions travel as ``LongTensor[B, n_ctx]`` token batches holding the gold answer;
answer tokens are the last ``n_answer`` positions (``layout.answer_positions``).

A task other than arithmetic plugs in as a class named by import path (``tasks.registry``):
``Class(digits)`` follows this protocol, and its class attribute ``vocabulary`` (a
``TaskVocabulary``) tells the hypothesis language its variables, classes, layout and DAG
without torch. ``examples/reverse_task.py`` is one. ``CausalTask`` gives a class the methods that
follow from its causal model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from circuitspec.tasks.layout import Layout
from circuitspec.vocabulary import Variable, VarKey

# A variable instance: ("SA", 3) or ("OPR", None).


@dataclass
class Counterfactuals:
    """Base/source question pairs that differ in one variable.

    ``predicted`` is the answer (tokens at the answer positions) that the causal model
    predicts for ``base`` when ``key`` takes its value from ``source``; ``valid`` marks
    rows for which a source could be built (``reason`` says why not, for the others).
    """

    key: VarKey
    base: torch.Tensor  # [B, n_ctx]
    source: torch.Tensor  # [B, n_ctx]
    predicted: torch.Tensor  # [B, n_answer]
    valid: torch.Tensor  # [B] bool
    reason: list[str | None]


@runtime_checkable
class Task(Protocol):
    name: str
    op: str  # what names the task in specs and cards: add, sub, mix or an import path; part of a model's shape
    layout: Layout  # or a plug-in's own: d(n), a(n), predicts(n), answer_positions, answer_labels, label(p), n_ctx, digits
    n_ctx: int
    d_vocab: int
    n_answer: int

    def encode(self, texts: Sequence[str]) -> torch.Tensor: ...

    def decode(self, tokens: torch.Tensor) -> list[str]: ...

    def generate(
        self,
        n: int,
        generator: torch.Generator,
        *,
        cls: str | None = None,
        enrich: bool = False,
    ) -> torch.Tensor: ...

    def answers(self, tokens: torch.Tensor) -> torch.Tensor: ...

    @property
    def variables(self) -> Mapping[str, Variable]: ...

    def variable(self, tokens: torch.Tensor, name: str, n: int | None = None) -> torch.Tensor: ...

    @property
    def class_names(self) -> list[str]: ...

    def classes(self, tokens: torch.Tensor) -> torch.Tensor: ...

    def available_classes(self) -> list[str]: ...

    def classes_for(self, name: str) -> list[str]: ...  # the classes a variable's pairs are drawn from

    def first_position(self, key: VarKey) -> int: ...

    def causal_answer(
        self, tokens: torch.Tensor, overrides: Mapping[VarKey, torch.Tensor]
    ) -> torch.Tensor: ...

    def cascade_gate(self, key: VarKey) -> VarKey | None: ...

    def tie(self, tokens: torch.Tensor, n: int) -> torch.Tensor: ...

    def counterfactuals(
        self,
        tokens: torch.Tensor,
        key: VarKey,
        generator: torch.Generator,
        *,
        keep: Sequence[VarKey] = (),
    ) -> Counterfactuals: ...


class CausalTask:
    """The protocol's methods that follow from three others: a class that defines ``causal_answer``,
    ``all_variables`` (name -> [B] or [B, columns]) and ``check_key`` gets the gold answers and one
    variable's values from them, so a plug-in cannot answer differently from its causal model."""

    def answers(self, tokens: torch.Tensor) -> torch.Tensor:
        """Gold answer tokens [B, n_answer]: the causal model with nothing forced."""
        return self.causal_answer(tokens, {})

    def variable(self, tokens: torch.Tensor, name: str, n: int | None = None) -> torch.Tensor:
        """Value of variable ``name`` (column ``n`` when per column) for every row, LongTensor[B]."""
        _, n = self.check_key((name, n))
        values = self.all_variables(tokens)[name]
        return values if n is None else values[:, n]
