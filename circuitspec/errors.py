"""One error family for everything a user can get wrong.

Every user-caused error is a ``CircuitSpecError``; a subclass may also subclass a builtin
where a caller's contract needs it (``TemplateError`` is a ``ValueError`` so that pydantic
validators report it at the field it came from). Each class has a short stable ``code``
(``CS300``: spec) shown in the CLI message (``render(code=True)``) and in ``to_dict()``, the JSON form. The CLI
converts them in one place (``circuitspec.cli.main``): printed without a traceback, exit 2.
Library callers read ``file``, ``line``, ``column`` and ``hint``.

>>> err = SpecError("unknown field 'kind'", file="specs/x.yaml", line=3, hint="did you mean 'site'?")
>>> print(err)
specs/x.yaml:3: unknown field 'kind'
  hint: did you mean 'site'?
>>> err.to_dict()["code"]
'CS300'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import ClassVar


class CircuitSpecError(Exception):
    """A problem the user can fix: bad input, a missing file, an impossible request."""

    code: ClassVar[str] = "CS000"

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

    def render(self, *, code: bool = False) -> str:
        """``file:line: message`` (with ``code``: `` [CS300]`` after it, as the CLI prints it) and the hint."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if code:
            text += f" [{self.code}]"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, str | int | None]:
        """The JSON form: code, message and where."""
        return {"code": self.code, "message": self.message, "file": self.file, "line": self.line, "column": self.column, "hint": self.hint}


class TaskError(CircuitSpecError):
    """Bad task settings or request (digits, operation, class, variable)."""

    code = "CS100"


class ModelError(CircuitSpecError):
    """A model that cannot be found, loaded or trusted."""

    code = "CS200"


class SpecError(CircuitSpecError):
    """A hypothesis file or object that does not validate or expand."""

    code = "CS300"


class TemplateError(SpecError, ValueError):
    """A template string of a spec (``SV{n-1}``, ``D'(n)..sign``) that does not parse or evaluate.

    ``subpath`` locates the problem below the object being validated (a key of a mapping,
    an index of a list); the spec loader turns it into a file line and column. ``str()`` is
    the bare message, because pydantic quotes it in its own error text.
    """

    code = "CS310"

    def __init__(self, message: str, *, hint: str | None = None, subpath: tuple = ()) -> None:
        super().__init__(message, hint=hint)
        self.subpath = tuple(subpath)

    def __str__(self) -> str:
        return self.message

    def under(self, *prefix) -> "TemplateError":
        """This error, located below ``prefix`` (the caller's key or index); re-raise it."""
        self.subpath = tuple(prefix) + self.subpath
        return self


class EngineError(CircuitSpecError):
    """An intervention that cannot be applied to this model (bad site, kind)."""

    code = "CS400"


class VerifyError(CircuitSpecError):
    """A verification that cannot run as asked (nothing applies, an output folder in use)."""

    code = "CS500"


class ReportError(CircuitSpecError, ValueError):
    """A verdict or report that cannot be rendered (a site outside its layout, an unknown node)."""

    code = "CS600"


class UnknownNodeError(SpecError, KeyError):
    """A node id that a verdict or hypothesis does not have (a ``KeyError`` for mapping-style callers)."""

    code = "CS320"

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.render()


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
