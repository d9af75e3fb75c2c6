"""A plug-in task written outside circuitspec: reverse a list of digits.

``ReverseTask(6)`` asks ``305127=`` and expects ``721503``: the question is D(0) .. D(5) (list
order, left to right), then ``=``, then the answer A(0) .. A(5) with A(k) = D(5 - k). Specs and
model cards name it by its import path, ``task: examples.reverse_task:ReverseTask``.

Variables: X(k), the list's digit k, and A(k), answer digit k. The causal model is one step,
A(k) = X(digits-1-k): forcing X(k) changes A(digits-1-k) and nothing else. Question classes:
``palindrome`` (the list reads the same both ways, so copying would also answer it) and ``plain``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from circuitspec.errors import TaskError
from circuitspec.tasks import CausalTask, Counterfactuals
from circuitspec.tasks.registry import TaskVocabulary
from circuitspec.vocabulary import Variable, VarKey

REF = "examples.reverse_task:ReverseTask"
EQUALS, D_VOCAB, MAX_DIGITS = 10, 11, 20
CHARS = "0123456789="
CLASSES = ("plain", "palindrome")
PALINDROME_P = 0.1  # share of palindromes in an enriched (training) batch: uniform lists almost never are one

VARIABLES = {
    "X": Variable("X", "the list's digit k", 10, ()),
    "A": Variable("A", "answer digit k, X(digits-1-k)", 10, ()),
}


@dataclass(frozen=True)
class ReverseLayout:
    """``D(0) .. D(n-1) = A(0) .. A(n-1)``: n_ctx = 2n + 1."""

    digits: int

    @property
    def n_ctx(self) -> int:
        return 2 * self.digits + 1

    @property
    def equals(self) -> int:
        return self.digits

    def d(self, k: int) -> int:
        self._check(k, "D")
        return k

    def a(self, k: int) -> int:
        self._check(k, "A")
        return self.digits + 1 + k

    def predicts(self, k: int) -> int:
        return self.a(k) - 1

    @property
    def answer_positions(self) -> list[int]:
        return list(range(self.digits + 1, self.n_ctx))

    @property
    def answer_labels(self) -> list[str]:
        return [f"A{k}" for k in range(self.digits)]

    def label(self, position: int) -> str:
        if not 0 <= position < self.n_ctx:
            raise TaskError(f"position {position} is outside 0..{self.n_ctx - 1}")
        n = self.digits
        return f"D{position}" if position < n else "=" if position == n else f"A{position - n - 1}"

    def __getattr__(self, name: str):  # D'(n), OPR, sign: positions of arithmetic, not of this task
        if name in ("d_prime", "opr", "sign"):
            word = {"d_prime": "D'(n)", "opr": "OPR", "sign": "sign"}[name]
            raise TaskError(f"a reversed list has no {word} position", hint="positions: D(k), =, A(k), predicts A(k)")
        raise AttributeError(name)

    def _check(self, k: int, what: str) -> None:
        if not 0 <= k < self.digits:
            raise TaskError(f"{what}({k}) does not exist with {self.digits} digits", hint=f"{what}(k) needs 0 <= k <= {self.digits - 1}")


def _parents(key: VarKey, digits: int) -> tuple[VarKey, ...]:
    name, k = key
    return (("X", digits - 1 - k),) if name == "A" else ()


class ReverseTask(CausalTask):
    """Reverse ``digits`` digits (the Task protocol of ``circuitspec.tasks.base``)."""

    vocabulary = TaskVocabulary(
        name=REF, variables=VARIABLES, classes=CLASSES, layouts={"list": ReverseLayout}, parents=_parents, d_vocab=D_VOCAB, max_digits=MAX_DIGITS
    )
    op = REF
    d_vocab = D_VOCAB

    def __init__(self, digits: int) -> None:
        if not isinstance(digits, int) or not 1 <= digits <= MAX_DIGITS:
            raise TaskError(f"digits must be an integer from 1 to {MAX_DIGITS}, got {digits!r}")
        self.digits = digits
        self.name = f"reverse_d{digits}"
        self.layout = ReverseLayout(digits)
        self.n_ctx = self.layout.n_ctx
        self.n_answer = digits

    # ---- tokens ----------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Tokens of ``305127=`` or ``305127=721503`` (the answer is checked)."""
        n = self.digits
        rows = []
        for text in texts:
            if len(text) not in (n + 1, self.n_ctx) or text[n] != "=" or not (text[:n] + text[n + 1 :]).isdigit():
                raise TaskError(f"{text!r} is not a list of {n} digits", hint=f"write {n} digits and '=', like {'1' * n}=")
            rows.append([int(c) for c in text[:n]])
        full = self._assemble(torch.tensor(rows, dtype=torch.long).reshape(len(rows), n))
        for text, row in zip(texts, self.decode(full)):
            if len(text) == self.n_ctx and text != row:
                raise TaskError(f"{text!r} has a wrong answer", hint=f"the right one is {row[n + 1:]}")
        return full

    def decode(self, tokens: torch.Tensor) -> list[str]:
        return ["".join(CHARS[t] for t in row) for row in torch.as_tensor(tokens).tolist()]

    # ---- data ------------------------------------------------------------------------------

    def generate(self, n: int, generator: torch.Generator, *, cls: str | None = None, enrich: bool = False) -> torch.Tensor:
        """``n`` questions; ``cls`` constructs one class; ``enrich`` makes PALINDROME_P of them palindromes."""
        if cls is not None and cls not in CLASSES:
            raise TaskError(f"unknown question class {cls!r}", hint="classes: " + ", ".join(CLASSES))
        if cls is not None and enrich:
            raise TaskError("enrich and cls cannot be combined")
        x = torch.randint(0, 10, (n, self.digits), generator=generator)
        mirror = self._mirror(x)
        if cls == "palindrome":
            x = mirror
        elif enrich:
            x = torch.where(torch.rand(n, 1, generator=generator) < PALINDROME_P, mirror, x)
        elif cls == "plain":
            same = (x == x.flip(1)).all(1)
            while same.any():
                x[same] = torch.randint(0, 10, (int(same.sum()), self.digits), generator=generator)
                same = (x == x.flip(1)).all(1)
        return self._assemble(x)

    # ---- variables and classes -------------------------------------------------------------

    @property
    def variables(self) -> Mapping[str, Variable]:
        return VARIABLES

    def all_variables(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self._digits(tokens)
        return {"X": x, "A": x.flip(1)}

    @property
    def class_names(self) -> list[str]:
        return list(CLASSES)

    def available_classes(self) -> list[str]:
        return list(CLASSES)

    def classes_for(self, name: str) -> list[str]:
        return list(CLASSES)  # every variable is read on both kinds of list

    def classes(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self._digits(tokens)
        return (x == x.flip(1)).all(1).long()

    # ---- causal model ----------------------------------------------------------------------

    def check_key(self, key: VarKey) -> VarKey:
        name, k = key
        if name not in VARIABLES:
            raise TaskError(f"unknown variable {name!r}", hint="variables: X(k), A(k)")
        if not isinstance(k, int) or not 0 <= k < self.digits:
            raise TaskError(f"{name}({k}) does not exist with {self.digits} digits")
        return key

    def causal_answer(self, tokens: torch.Tensor, overrides: Mapping[VarKey, torch.Tensor | int]) -> torch.Tensor:
        """The answer with variables forced: X overrides first, then A overrides on top."""
        x = self._digits(tokens).clone()
        forced = {self.check_key(k): torch.as_tensor(v, dtype=torch.long).expand(x.shape[0]) for k, v in overrides.items()}
        for (name, k), v in forced.items():
            if name == "X":
                x[:, k] = v
        a = x.flip(1)
        for (name, k), v in forced.items():
            if name == "A":
                a[:, k] = v
        return a

    def reaches(self, source: VarKey, target: VarKey) -> bool:
        return self.vocabulary.reaches(self.check_key(source), self.check_key(target), self.digits)

    def path_ties(self, source: VarKey, target: VarKey) -> list[VarKey]:
        return []  # every change reaches the answer directly

    def path_answer(self, base: torch.Tensor, source: torch.Tensor, sender: VarKey, receivers: Sequence[VarKey]) -> torch.Tensor:
        """``sender`` takes its ``source`` value as an input of ``receivers`` only."""
        value = self.variable(source, *sender)
        return self.causal_answer(base, {r: value for r in receivers if r[0] == "A" and self.reaches(sender, r)})

    def cascade_gate(self, key: VarKey) -> VarKey | None:
        return None

    def tie(self, tokens: torch.Tensor, n: int) -> torch.Tensor:
        raise TaskError("a reversed list has no carry to tie")

    def first_position(self, key: VarKey) -> int:
        """The first position that sees what ``key`` depends on."""
        name, k = self.check_key(key)
        return self.layout.d(k if name == "X" else self.digits - 1 - k)

    def counterfactuals(self, tokens: torch.Tensor, key: VarKey, generator: torch.Generator, *, keep: Sequence[VarKey] = ()) -> Counterfactuals:
        """Each source is its base with the one digit ``key`` reads changed to another digit."""
        name, k = self.check_key(key)
        column = k if name == "X" else self.digits - 1 - k
        x = self._digits(tokens)
        rows = x.shape[0]
        shift = torch.randint(1, 10, (rows,), generator=generator)
        sx = x.clone()
        sx[:, column] = (x[:, column] + shift) % 10
        source = self._assemble(sx)
        kept = {self.check_key(c)[1] if c[0] == "X" else self.digits - 1 - c[1] for c in keep}
        valid = torch.full((rows,), column not in kept, dtype=torch.bool)
        reason = [None if column not in kept else f"{key} cannot change while its digit is kept"] * rows
        predicted = self.causal_answer(tokens, {key: self.variable(source, name, k)})
        return Counterfactuals(key=key, base=tokens, source=source, predicted=predicted, valid=valid, reason=reason)

    # ---- helpers ---------------------------------------------------------------------------

    def _mirror(self, x: torch.Tensor) -> torch.Tensor:
        half = (self.digits + 1) // 2
        return torch.cat([x[:, :half], x[:, : self.digits - half].flip(1)], dim=1)

    def _digits(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] != self.n_ctx:
            raise TaskError(f"{self.name} expects tokens of shape [B, {self.n_ctx}]")
        return tokens[:, : self.digits]

    def _assemble(self, x: torch.Tensor) -> torch.Tensor:
        equals = torch.full((x.shape[0], 1), EQUALS, dtype=torch.long, device=x.device)
        return torch.cat([x.long(), equals, x.long().flip(1)], dim=1)
