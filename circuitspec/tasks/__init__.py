"""Tasks: data, variables and the high-level causal model.

Kept importable without torch (``spec/`` reads ``layout``); the torch-backed parts
load on first use.
"""

from circuitspec.tasks.layout import MAX_DIGITS, Layout
from circuitspec.vocabulary import OPERATIONS, VARIABLES, Variable

__all__ = ["MAX_DIGITS", "OPERATIONS", "VARIABLES", "Layout", "Variable", "ArithmeticTask", "Task", "CausalTask", "Counterfactuals"]


def __getattr__(name: str):
    if name == "ArithmeticTask":
        from circuitspec.tasks.arithmetic import ArithmeticTask

        return ArithmeticTask
    if name in ("Task", "CausalTask", "Counterfactuals"):
        from circuitspec.tasks import base

        return getattr(base, name)
    raise AttributeError(name)
