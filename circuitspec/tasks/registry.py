"""Which task a spec or a model card names, and what the layers above ``tasks/`` may ask of it.

A task is named by a built-in operation (``add``, ``sub``, ``mix``: the arithmetic task) or by
an import path ``package.module:Class`` to a plug-in class that a user wrote outside the package
(the current directory is importable, as with ``python -m``). The class follows the ``Task``
protocol (``tasks.base``) and is built as ``Class(digits)``; ``digits`` is the task's one size
(the list length of a list task). Its class attribute ``vocabulary`` is a ``TaskVocabulary``:
what the hypothesis language, the model card and expansion need, none of it needing torch.

Importing this module does not import torch; resolving a plug-in imports the plug-in's module.

>>> voc = vocabulary("add")
>>> voc.layout(6).a(0), voc.layout(6, "reversed").a(0)
(21, 15)
>>> voc.root_parents(("A", 2), 3), voc.reaches(("ST", 0), ("SV", 2), 3)
((('SA', 2),), True)
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

from circuitspec.errors import TaskError, unknown
from circuitspec.vocabulary import OPERATIONS, QUESTION_CLASSES, VARIABLES, Variable, VarKey

IMPORT_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
TASK_HINT = "write add, sub or mix, or the import path of a task class, e.g. examples.reverse_task:ReverseTask"


@dataclass(frozen=True)
class TaskVocabulary:
    """A task as the hypothesis language sees it.

    ``variables``: every variable a spec may name (``computes: X(n)``); ``classes``: its
    question classes (``breaks:``, ``explains:``); ``layouts``: name -> ``factory(digits)`` of
    where the tokens sit (``d(n)``, ``a(n)``, ``predicts(n)``, ``answer_positions``,
    ``answer_labels``, ``label(p)``, ``n_ctx``; a position the task lacks raises TaskError), the
    first one the default; ``parents(key, digits)``: the causal
    model's DAG, one step (edges must follow it); ``d_vocab``: tokens it uses (a layout with a
    ``d_vocab`` of its own says how many it uses); ``max_digits``: the largest size it takes.
    """

    name: str
    variables: Mapping[str, Variable]
    classes: Sequence[str]
    layouts: Mapping[str, Callable[[int], Any]]
    parents: Callable[[VarKey, int], tuple[VarKey, ...]]
    d_vocab: int
    max_digits: int
    _ancestors: dict = field(default_factory=dict, compare=False, repr=False)
    _siblings: dict = field(default_factory=dict, compare=False, repr=False)

    def layout(self, digits: int, name: str | None = None):
        """The layout ``name`` (None: the default) at this size."""
        if name is None:
            name = next(iter(self.layouts))
        if name not in self.layouts:
            raise unknown(f"layout of {self.name}", name, self.layouts, TaskError)
        return self.layouts[name](digits)

    def tokens_used(self, digits: int, name: str | None = None) -> int:
        """How many tokens the layout ``name`` uses: its own ``d_vocab``, else the task's."""
        return getattr(self.layout(digits, name), "d_vocab", self.d_vocab)

    def ancestors(self, key: VarKey, digits: int) -> frozenset[VarKey]:
        """Every variable instance ``key`` depends on, directly or through others."""
        memo = self._ancestors.setdefault(digits, {})
        if key not in memo:
            out: set[VarKey] = set()
            for p in self.parents(key, digits):
                out |= {p} | self.ancestors(p, digits)
            memo[key] = frozenset(out)
        return memo[key]

    def root_parents(self, key: VarKey, digits: int) -> tuple[VarKey, ...]:
        """The parents of ``key`` computed from the input alone, when ``key`` also has parents
        that are not (A(n)'s SA(n) beside SV(n-1)); else ()."""
        ps = self.parents(key, digits)
        roots = tuple(p for p in ps if not self.parents(p, digits))
        return roots if roots and len(roots) < len(ps) else ()

    def siblings(self, key: VarKey, digits: int) -> tuple[VarKey, ...]:
        """The other parents of each child of ``key`` that is made only of input-computed
        variables of ``key``'s own column (SS(n) beside SC(n), the two parts of ST(n)).

        They are functions of the same digits, so a change of ``key`` alone usually changes
        them too; a site that reads the column sum is then patched to a value the causal
        model's single override does not predict. Holding them equal (a spec's ``keep``)
        tests the variable by itself."""
        memo = self._siblings.setdefault(digits, {})
        if key not in memo:
            out: list[VarKey] = []
            for name, var in self.variables.items():
                for n in var.digit_range(digits) if var.per_digit else [None]:
                    ps = self.parents((name, n), digits)
                    if key in ps and all(not self.parents(p, digits) and p[1] == key[1] for p in ps):
                        out += [p for p in ps if p != key and p not in out]
            memo[key] = tuple(out)
        return memo[key]

    def reaches(self, source: VarKey, target: VarKey, digits: int) -> bool:
        """Whether changing ``source`` can change ``target`` (a variable reaches itself)."""
        return source == target or source in self.ancestors(target, digits)


def _arithmetic(op: str) -> TaskVocabulary:
    from circuitspec.tasks import dag
    from circuitspec.tasks.layout import D_VOCAB, LAYOUTS, MAX_DIGITS, SIGNED_LAYOUTS, Layout

    used = {k: v for k, v in VARIABLES.items() if op == "mix" or op in v.ops}
    return TaskVocabulary(
        name=op,
        variables=used,
        classes=QUESTION_CLASSES[op],
        layouts={name: partial(Layout, name=name) for name in (LAYOUTS if op == "add" else SIGNED_LAYOUTS)},
        parents=lambda key, digits: dag.parents(key, op, digits),
        d_vocab=D_VOCAB,
        max_digits=MAX_DIGITS,
    )


def is_builtin(ref: str) -> bool:
    return ref in OPERATIONS


def check_ref(ref: Any) -> str:
    """``ref`` if it names a task that loads (TaskError with a hint otherwise)."""
    vocabulary(ref)
    return ref


def vocabulary(ref: str) -> TaskVocabulary:
    """The vocabulary of the task ``ref`` names."""
    if isinstance(ref, str) and is_builtin(ref):
        return _builtin_vocabulary(ref)
    voc = getattr(task_class(ref), "vocabulary", None)
    if not isinstance(voc, TaskVocabulary):
        raise TaskError(f"task class {ref} has no vocabulary", hint="give the class a `vocabulary = TaskVocabulary(...)` attribute (circuitspec.tasks.registry)")
    return voc


@lru_cache(maxsize=None)
def _builtin_vocabulary(op: str) -> TaskVocabulary:
    return _arithmetic(op)


def task_class(ref: str) -> type:
    """The plug-in class at import path ``ref`` (``module:Class``)."""
    if not isinstance(ref, str) or not IMPORT_PATH.fullmatch(ref):
        raise TaskError(f"{str(ref)!r:.80} is not a task", hint=TASK_HINT)
    module_name, _, attr = ref.partition(":")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except (ImportError, SyntaxError) as err:
        raise TaskError(f"cannot import {module_name} for task {ref} ({err})", hint="the module must be importable from the current directory or the Python path") from None
    finally:
        if added:
            sys.path.remove(cwd)
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise TaskError(f"{module_name} has no class {attr} (task {ref})", hint=f"define class {attr} in {module_name}")
    return cls


def make_task(ref: str, digits: int, layout: str | None = None):
    """The task ``ref`` names at this size and layout (None: its default): ``ArithmeticTask(op,
    digits, layout)``, or ``Class(digits)`` for a plug-in (which has the one layout it defines)."""
    voc = vocabulary(ref)
    voc.layout(digits, layout)  # a TaskError for a layout the task does not have
    if is_builtin(ref):
        from circuitspec.tasks.arithmetic import ArithmeticTask

        return ArithmeticTask(ref, digits, layout or "paper")
    if layout not in (None, next(iter(voc.layouts))):
        raise TaskError(f"task {ref} has one layout, {next(iter(voc.layouts))!r}")
    return task_class(ref)(digits)
