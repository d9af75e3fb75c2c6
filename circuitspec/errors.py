"""One error family for everything a user can get wrong.

The CLI prints these without a traceback and exits 2; library callers can catch
``CircuitSpecError`` and read ``file``, ``line``, ``column`` and ``hint``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CircuitSpecError(Exception):
    """A problem the user can fix: bad input, a missing file, an impossible request."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.render())

    @property
    def where(self) -> str:
        """``file:line:column`` as far as it is known ('' when nothing is)."""
        if self.file is None:
            return ""
        parts = [str(self.file)]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def render(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class TaskError(CircuitSpecError):
    """Bad task settings or request (digits, operation, class, variable)."""


class ModelError(CircuitSpecError):
    """A model that cannot be found, loaded or trusted."""


class SpecError(CircuitSpecError):
    """A hypothesis file or object that does not validate or expand."""


class EngineError(CircuitSpecError):
    """An intervention that cannot be applied to this model (bad site, kind)."""


def closest(name: str, allowed: Iterable[str]) -> str | None:
    """The allowed name most like ``name``, for 'did you mean' hints."""
    matches = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.4)
    return matches[0] if matches else None


def unknown(what: str, name: str, allowed: Iterable[str], cls: type[CircuitSpecError] = CircuitSpecError, **where) -> CircuitSpecError:
    """Build the standard 'unknown X' error with the allowed names and the closest one."""
    allowed = sorted(set(allowed), key=str)
    guess = closest(str(name), [str(a) for a in allowed])
    hint = f"did you mean {guess!r}? " if guess else ""
    hint += "allowed: " + ", ".join(str(a) for a in allowed)
    return cls(f"unknown {what} {name!r}", hint=hint, **where)
