"""Questions as digit columns: the form every computation in the task works on.

Tokens put the high digit first; the paper indexes columns from the units digit.
So a batch is held as two operands ``x``, ``y`` (LongTensor[B, digits], column 0 =
units, i.e. ``x[:, n]`` is D_n and ``y[:, n]`` is D'_n) and an operator ``opr``
(LongTensor[B], 0 = '+', 1 = '-'), converted to and from tokens only at the edges,
where the layout (``layout.py``) decides the answer's order, its sign and operand blanks.
"""

from __future__ import annotations

import torch

from circuitspec.tasks.layout import BLANK, EQUALS, MINUS, PLUS, Layout


def split(tokens: torch.Tensor, digits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Operands (units first) and operator of a token batch; a blank digit is a 0."""
    operands = torch.cat([tokens[:, :digits], tokens[:, digits + 1 : 2 * digits + 1]], dim=1)
    operands = operands.masked_fill(operands == BLANK, 0)
    x, y = operands[:, :digits].flip(1), operands[:, digits:].flip(1)
    opr = (tokens[:, digits] == MINUS).long()
    return x, y, opr


def answer_tokens(sign: torch.Tensor, answer: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Answer tokens [B, n_answer] from the sign token [B] and answer digits [B, digits+1] (units first):
    the sign if the layout has one, then the digits in its order."""
    digits = layout.in_order(answer).long()
    return torch.cat([sign[:, None].long(), digits], dim=1) if layout.has_sign else digits


def operand_tokens(x: torch.Tensor, layout: Layout) -> torch.Tensor:
    """An operand's tokens (high digit first): its digits, leading zeros blank when the layout is unpadded."""
    tokens = x.long().flip(1)
    if layout.padded:
        return tokens
    leading = (tokens == 0).cumprod(1).bool()
    leading[:, -1] = False  # the units digit is written even for 0
    return tokens.masked_fill(leading, BLANK)


def assemble(
    x: torch.Tensor, y: torch.Tensor, opr: torch.Tensor, sign: torch.Tensor, answer: torch.Tensor, layout: Layout | None = None
) -> torch.Tensor:
    """Token batch from operands, operator, sign token [B] and answer digits [B, digits+1] (units
    first), in ``layout`` (default: the paper's)."""
    rows = x.shape[0]
    layout = layout or Layout(x.shape[1])
    op_token = torch.where(opr == 1, MINUS, PLUS)
    equals = torch.full((rows, 1), EQUALS, device=x.device)
    parts = [operand_tokens(x, layout), op_token[:, None], operand_tokens(y, layout), equals, answer_tokens(sign, answer, layout)]
    return torch.cat([p.long() for p in parts], dim=1)
