"""Questions as digit columns: the form every computation in the task works on.

Tokens put the high digit first; the paper indexes columns from the units digit.
So a batch is held as two operands ``x``, ``y`` (LongTensor[B, digits], column 0 =
units, i.e. ``x[:, n]`` is D_n and ``y[:, n]`` is D'_n) and an operator ``opr``
(LongTensor[B], 0 = '+', 1 = '-'), converted to and from tokens only at the edges.
"""

from __future__ import annotations

import torch

from circuitspec.tasks.layout import EQUALS, MINUS, PLUS, Layout


def split(tokens: torch.Tensor, digits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Operands (units first) and operator of a token batch."""
    x = tokens[:, :digits].flip(1)
    opr = (tokens[:, digits] == MINUS).long()
    y = tokens[:, digits + 1 : 2 * digits + 1].flip(1)
    return x, y, opr


def assemble(
    x: torch.Tensor, y: torch.Tensor, opr: torch.Tensor, sign: torch.Tensor, answer: torch.Tensor, layout: Layout | None = None
) -> torch.Tensor:
    """Token batch from operands, operator, sign token [B] and answer digits [B, digits+1] (units
    first), the answer in ``layout``'s order (default: the paper's)."""
    rows = x.shape[0]
    op_token = torch.where(opr == 1, MINUS, PLUS)
    equals = torch.full((rows, 1), EQUALS, device=x.device)
    answer = layout.in_order(answer) if layout is not None else answer.flip(1)
    parts = [x.flip(1), op_token[:, None], y.flip(1), equals, sign[:, None], answer]
    return torch.cat([p.long() for p in parts], dim=1)
