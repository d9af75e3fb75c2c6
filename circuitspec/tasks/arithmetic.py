"""The built-in arithmetic task: n-digit addition, subtraction or both, as in the paper.

Token layout and vocabulary are the paper's by default (``layout.py``), so its checkpoints load.
Everything is vectorised over a batch; the only Python loops run over digit columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from circuitspec.errors import TaskError, unknown
from circuitspec.tasks import causal, classes, dag
from circuitspec.tasks.base import CausalTask, Counterfactuals
from circuitspec.tasks.columns import answer_tokens, assemble, split
from circuitspec.tasks.layout import (
    BLANK,
    EQUALS,
    MINUS,
    PLUS,
    SIGNED_LAYOUTS,
    TOKEN_CHARS,
    Layout,
    check_digits,
    check_op,
)
from circuitspec.vocabulary import VARIABLES, Variable, VarKey
from circuitspec.vocabulary import variable as lookup_variable


# Which question classes exercise a variable: its own operation's branch.
_CLASS_PREFIX = {"S": ("S",), "M": ("M",), "N": ("N",), "G": ("M", "N")}


class ArithmeticTask(CausalTask):
    """``op`` in add / sub / mix, ``digits`` from 1 to 20, ``layout`` one of ``layout.LAYOUTS``
    (the paper's, the answer digits reversed, no sign token, operands unpadded, or a combination;
    sub and mix keep the sign); name like ``add_d6`` (``add_d6_reversed``)."""

    def __init__(self, op: str, digits: int, layout: str = "paper") -> None:
        self.op = check_op(op)
        self.digits = check_digits(digits)
        self.layout = Layout(digits, layout)
        if op != "add" and layout not in SIGNED_LAYOUTS:
            raise TaskError(f"{op} answers can be negative, so the {layout} layout (no sign token) does not fit them", hint="use it with add, or a layout with the sign: " + ", ".join(SIGNED_LAYOUTS))
        self.name = f"{op}_d{digits}" + ("" if layout == "paper" else f"_{layout}")
        self.n_ctx = self.layout.n_ctx
        self.n_answer = self.n_ctx - self.layout.first_answer
        self.d_vocab = self.layout.d_vocab

    def __repr__(self) -> str:
        return f"ArithmeticTask({self.op!r}, {self.digits}" + ("" if self.layout.name == "paper" else f", {self.layout.name!r}") + ")"

    # ---- tokens ---------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Tokens of questions in the paper's notation, ``133357+182243=+0315600``, as the layout
        writes them: ``133357+182243=+0065130`` reversed, ``133357+182243=0315600`` without the sign,
        ``__3357+_82243=+0085600`` unpadded (operand leading zeros blank, and only those).

        A question may stop after ``=``; its gold answer is then filled in.
        """
        d, q_len = self.digits, 2 * self.digits + 2
        rows = []
        for text in texts:
            if len(text) not in (q_len, self.n_ctx) or any(c not in TOKEN_CHARS for c in text):
                raise TaskError(
                    f"{text!r} is not a {d}-digit question",
                    hint=f"write {q_len} characters like {'1' * d}+{'2' * d}= (answer optional, {self.n_ctx} in all)",
                )
            rows.append([TOKEN_CHARS.index(c) for c in text[:q_len]])
        tokens = torch.tensor(rows, dtype=torch.long).reshape(len(rows), q_len)
        self._check_question(tokens, texts)
        full = torch.cat([tokens, torch.zeros(len(rows), self.n_answer, dtype=torch.long)], dim=1)
        full[:, self.layout.first_answer :] = self.answers(full)
        for text, row in zip(texts, self.decode(full)):
            if len(text) == self.n_ctx and text != row:
                raise TaskError(f"{text!r} has a wrong answer", hint=f"the right one is {row[q_len:]}")
        return full

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """Paper notation of each row (any token sequence of the vocabulary)."""
        tokens = torch.as_tensor(tokens)
        if tokens.dim() != 2 or tokens.numel() and not (0 <= int(tokens.min()) and int(tokens.max()) < self.d_vocab):
            raise TaskError(f"cannot decode tokens of shape {tuple(tokens.shape)} outside the vocabulary of {self.d_vocab}")
        return ["".join(TOKEN_CHARS[t] for t in row) for row in tokens.tolist()]

    # ---- data -----------------------------------------------------------------------------

    def generate(
        self,
        n: int,
        generator: torch.Generator,
        *,
        cls: str | None = None,
        enrich: bool = False,
        sum9_batch_p: float = 0.4,
        sum9_slot_p: float = 0.4,
        nudge_p: float = 0.25,
        equal_batch_p: float = 0.01,
        sub_p: float = 0.66,
        hard_p: float = 0.0,
        short_p: float = 0.25,
    ) -> torch.Tensor:
        """``n`` questions with gold answers, on the generator's device.

        ``cls`` constructs questions of one class. ``enrich`` applies the paper's
        training-data enrichment, one draw per call (= per batch): with probability
        ``sum9_batch_p`` each addition digit slot is, with probability ``sum9_slot_p``,
        rewritten so its column sums to 9 (cascades are otherwise rare); subtraction
        slots of D' are raised to at least D's digit with probability ``nudge_p`` (more
        negative answers and equal columns) and with probability ``equal_batch_p`` the
        whole batch has D' = D. In ``mix`` each row is subtraction with probability
        ``sub_p``. ``hard_p``: each row is, with this probability, replaced by a sparse
        or cascade row (``tasks.hard``); 0 draws nothing extra, so older recipes reproduce.
        In an unpadded layout, ``enrich`` also cuts each operand, with probability ``short_p``, to a
        length drawn from 1..digits (its leading zeros are blanks): uniform digits almost never
        give a number two or more digits short. Padded layouts draw nothing for it.
        """
        if not isinstance(n, int) or n < 0:
            raise TaskError(f"number of questions must be a non-negative integer, got {n!r}")
        device, d = generator.device, self.digits
        if cls is not None:
            if enrich:
                raise TaskError("enrich and cls cannot be combined", hint="class-stratified questions are built exactly")
            x, y = classes.construct(classes.check_class(cls, self.op, d), d, n, generator)
            opr = torch.full((n,), int(cls[0] != "S"), dtype=torch.long, device=device)
            return self._assemble(x, y, opr)

        def rand(*shape):
            return torch.rand(*shape, generator=generator, device=device)

        x = torch.randint(0, 10, (n, d), generator=generator, device=device, dtype=causal.SMALL)
        y = torch.randint(0, 10, (n, d), generator=generator, device=device, dtype=causal.SMALL)
        if self.op == "mix":
            opr = (rand(n) < sub_p).long()
        else:
            opr = torch.full((n,), int(self.op == "sub"), dtype=torch.long, device=device)
        if enrich and self.op != "sub" and rand(1).item() < sum9_batch_p:
            y = torch.where((opr[:, None] == 0) & (rand(n, d) < sum9_slot_p), 9 - x, y)
        if enrich and self.op != "add":
            nudged = torch.where(rand(n, d) < nudge_p, torch.maximum(x, y), y)
            if rand(1).item() < equal_batch_p:
                nudged = x
            y = torch.where(opr[:, None] == 1, nudged, y)
        if enrich and not self.layout.padded:
            for v in (x, y):
                length = torch.randint(1, d + 1, (n, 1), generator=generator, device=device)
                v.masked_fill_((rand(n, 1) < short_p) & (torch.arange(d, device=device) >= length), 0)
        if hard_p > 0:
            from circuitspec.tasks.hard import hard_digits

            hx, hy = hard_digits(n, d, opr, generator)
            pick = (rand(n) < hard_p)[:, None]
            x, y = torch.where(pick, hx, x), torch.where(pick, hy, y)
        return self._assemble(x, y, opr)

    # ---- variables and classes -------------------------------------------------------------

    @property
    def variables(self) -> Mapping[str, Variable]:
        return VARIABLES

    def all_variables(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every variable at once: per-digit ones as [B, digits] ([B, digits+1] for A), others [B].

        Computed for every row whatever its operator: variables are functions of the
        digits (SGN is the sign subtraction would give). ``variable`` picks one of them.
        """
        x, y, opr = split(self._check_tokens(tokens), self.digits)
        return {k: v.long() for k, v in causal.evaluate(x, y, opr).items() if k != "sign"}

    @property
    def class_names(self) -> list[str]:
        return classes.class_names(self.op)

    def available_classes(self) -> list[str]:
        """The classes that exist at this digit count."""
        return classes.available(self.op, self.digits)

    def classes(self, tokens: torch.Tensor, *, variables: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Index into ``class_names`` of each row's class.

        Pass ``variables`` (from ``all_variables`` of the same tokens) to skip recomputing them.
        """
        if variables is None:
            x, y, opr = split(self._check_tokens(tokens), self.digits)
            variables = causal.evaluate(x, y, opr)
        index = classes.classify(variables)
        return index - (len(classes.ADD_CLASSES) if self.op == "sub" else 0)

    def classes_for(self, name: str) -> list[str]:
        """The classes (of those that exist at this digit count) whose questions a variable is
        tested on: its own operation's branch (``SA`` -> S0..S5, ``GT`` and ``SGN`` -> M and N)."""
        prefixes = _CLASS_PREFIX.get("G" if name == "SGN" else name[0], ()) if name not in ("OPR", "A") else None
        return [c for c in self.available_classes() if prefixes is None or c.startswith(prefixes)]

    def tricase_questions(
        self, column: int, per_case: int, generator: torch.Generator, *, name: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Questions balanced over the three cases of a tri-case variable at one column, for probing.

        ``name`` is ST, MT or NT (default: ST for add and mix, MT for sub). Only column
        ``column`` is constrained; the rest is uniform. Returns tokens [3 * per_case,
        n_ctx] (case 0 first) and the case of each row.
        """
        name = name or ("MT" if self.op == "sub" else "ST")
        if name not in ("ST", "MT", "NT"):
            raise unknown("tri-case variable", name, ["ST", "MT", "NT"], TaskError)
        self.check_key((name, column))
        if not isinstance(per_case, int) or per_case < 1:
            raise TaskError(f"per_case must be a positive integer, got {per_case!r}")
        op = "add" if name == "ST" else "sub"
        if self.op not in (op, "mix"):
            raise TaskError(f"{name} questions need '{'+' if op == 'add' else '-'}', which {self.name} does not use")
        device, rows = generator.device, 3 * per_case
        cases = torch.arange(3, device=device).repeat_interleave(per_case)
        x = torch.randint(0, 10, (rows, self.digits), generator=generator, device=device)
        y = torch.randint(0, 10, (rows, self.digits), generator=generator, device=device)
        a, b = classes.pairs_of(cases, op, generator)
        if name == "NT":
            a, b = b, a
        x[:, column], y[:, column] = a, b
        opr = torch.full((rows,), int(op == "sub"), dtype=torch.long, device=device)
        return self._assemble(x, y, opr), cases

    # ---- causal model ---------------------------------------------------------------------

    def check_key(self, key: VarKey) -> VarKey:
        """A valid variable instance, or a TaskError naming what is allowed."""
        name, n = key
        var = lookup_variable(name)
        if not var.per_digit:
            if n is not None:
                raise TaskError(f"{name} is not per digit, got column {n!r}", hint=f"use ({name!r}, None)")
            return key
        columns = var.digit_range(self.digits)
        if not isinstance(n, int) or isinstance(n, bool) or n not in columns:
            raise TaskError(
                f"{name}({n}) does not exist with {self.digits} digits",
                hint=f"{name}(n) needs 0 <= n <= {columns.stop - 1}",
            )
        return key

    def causal_answer(self, tokens: torch.Tensor, overrides: Mapping[VarKey, torch.Tensor | int]) -> torch.Tensor:
        """Answer tokens [B, n_answer] when the given variables are forced to the given values.

        Values are LongTensor[B] or ints; every downstream variable and answer digit
        follows (see ``causal``). No override gives the gold answer.
        """
        x, y, opr = split(self._check_tokens(tokens), self.digits)
        resolved = {}
        for key, value in overrides.items():
            name, _ = self.check_key(key)
            value = torch.as_tensor(value, dtype=torch.long, device=x.device).expand(x.shape[0])
            if value.numel() and not (0 <= int(value.min()) and int(value.max()) < VARIABLES[name].values):
                raise TaskError(f"override of {name} outside 0..{VARIABLES[name].values - 1}")
            resolved[key] = value
        values = causal.evaluate(x, y, opr, resolved)
        return answer_tokens(values["sign"], values["A"], self.layout)

    def path_answer(
        self, base: torch.Tensor, source: torch.Tensor, sender: VarKey, receivers: Sequence[VarKey]
    ) -> torch.Tensor:
        """Answer tokens [B, n_answer] of ``base`` when ``sender`` takes its value on ``source``
        only as an input of ``receivers`` (``causal.seen_by``): the prediction of a path-patching
        test of the edge sender -> receivers. Receivers the sender does not reach keep their values."""
        x, y, opr = split(self._check_tokens(base), self.digits)
        sx, sy, sopr = split(self._check_tokens(source), self.digits)
        if sx.shape != x.shape:
            raise TaskError(f"path_answer needs one source per base question, got {sx.shape[0]} for {x.shape[0]}")
        sender = self.check_key(sender)
        value = causal.pick(causal.evaluate(sx, sy, sopr), sender)
        overrides = causal.seen_by(x, y, opr, sender, value, [self.check_key(r) for r in receivers])
        values = causal.evaluate(x, y, opr, overrides)
        return answer_tokens(values["sign"], values["A"], self.layout)

    def reaches(self, source: VarKey, target: VarKey) -> bool:
        """Whether changing ``source`` can change ``target`` in the causal model (``tasks.dag``)."""
        return dag.reaches(self.check_key(source), self.check_key(target), self.op, self.digits)

    def path_ties(self, source: VarKey, target: VarKey) -> list[VarKey]:
        """The TriCases that must be ties (uncertain) for ``source`` to reach ``target`` through
        the carry cascade (``ST(2)``, ``ST(3)`` for ST(1) -> SV(3)); ``tie`` makes them so."""
        family = source[0][0]
        return [(dag.GATES[family], c) for c in dag.tie_columns(source, target)] if family in dag.GATES else []

    def first_position(self, key: VarKey) -> int:
        """The first position that sees every digit ``key`` depends on."""
        name, n = self.check_key(key)
        if name == "OPR":
            return self.layout.opr
        if n is None or name in ("SV", "MV", "NV", "A"):
            return self.layout.d_prime(0)  # columns 0..n, whose last digit is D'(0)
        return self.layout.d_prime(n)

    def cascade_gate(self, key: VarKey) -> VarKey | None:
        """For a cascaded variable above column 0 (``SV(3)``), the TriCase that passes the
        carry from below when uncertain (``ST(3)``); None for any other variable."""
        name, n = self.check_key(key)
        gate = causal.CASCADES.get(name)
        return (gate, n) if gate and n else None

    def tie(self, tokens: torch.Tensor, n: int) -> torch.Tensor:
        """The same questions with column ``n`` made a tie (digits summing to 9 for '+',
        equal digits for '-'), so its carry or borrow is the one from below."""
        if not 0 <= n < self.digits:
            raise TaskError(f"column {n} is outside a {self.digits}-digit question")
        x, y, opr = split(self._check_tokens(tokens), self.digits)
        y = y.clone()
        y[:, n] = torch.where(opr == 1, x[:, n], 9 - x[:, n])
        return self._assemble(x, y, opr)

    def counterfactuals(
        self, tokens: torch.Tensor, key: VarKey, generator: torch.Generator, *, keep: Sequence[VarKey] = ()
    ) -> Counterfactuals:
        from circuitspec.tasks.counterfactual import build

        return build(self, self._check_tokens(tokens), self.check_key(key), generator, [self.check_key(k) for k in keep])

    def assemble(self, x: torch.Tensor, y: torch.Tensor, opr: torch.Tensor) -> torch.Tensor:
        """Questions with gold answers from operands (LongTensor[B, digits], units first) and operator [B] (0 '+', 1 '-')."""
        if x.dim() != 2 or x.shape != y.shape or x.shape[1] != self.digits or opr.shape != x.shape[:1]:
            raise TaskError(f"{self.name} needs operands of shape [B, {self.digits}] and an operator [B]")
        return self._assemble(x, y, opr)

    # ---- helpers --------------------------------------------------------------------------

    def _assemble(self, x: torch.Tensor, y: torch.Tensor, opr: torch.Tensor) -> torch.Tensor:
        values = causal.evaluate(x, y, opr, answer_only=True)
        return assemble(x, y, opr, values["sign"], values["A"], self.layout)

    def _check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] != self.n_ctx:
            shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise TaskError(f"{self.name} expects tokens of shape [B, {self.n_ctx}], got {shape}")
        if tokens.dtype != torch.long:
            raise TaskError(f"{self.name} expects integer (long) tokens, got {tokens.dtype}")
        return tokens

    def _check_question(self, tokens: torch.Tensor, texts: Sequence[str]) -> None:
        d = self.digits
        operand = torch.cat([tokens[:, :d], tokens[:, d + 1 : 2 * d + 1]], dim=1)
        ops = {"add": (PLUS,), "sub": (MINUS,), "mix": (PLUS, MINUS)}[self.op]
        bad = ((operand > 9) & (operand != BLANK)).any(1) | ~torch.isin(tokens[:, d], torch.tensor(ops)) | (tokens[:, 2 * d + 1] != EQUALS)
        if bad.any():
            text = texts[int(bad.nonzero()[0])]
            raise TaskError(
                f"{text!r} is not a {self.op} question with {d} digits",
                hint=f"operator {' or '.join(TOKEN_CHARS[o] for o in ops)}, {d} digits each side, then '='",
            )
        x, y, opr = split(tokens, d)
        canonical = self._assemble(x, y, opr)[:, : 2 * d + 2]
        wrong = (canonical != tokens).any(1)
        if wrong.any():
            row = int(wrong.nonzero()[0])
            padding = "leading zeros as '_'" if not self.layout.padded else "every digit, no '_'"
            raise TaskError(
                f"{texts[row]!r} is not written in the {self.layout.name} layout ({padding})",
                hint=f"write it as {self.decode(canonical[row : row + 1])[0]}",
            )
