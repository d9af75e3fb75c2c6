"""Hard training rows: sparse operands and carry (borrow) cascades, drawn in bulk on a torch generator.

The trainer's ``hard_fraction`` replaces that share of each batch with these rows so
a model sees the question families of ``tasks.families`` (mostly-zero operands, a
carry followed by a run of sum-9 columns at any place) far more often than uniform
data shows them. The distribution is broader than the evaluation families (any
number of non-zero digits, cascades with the other columns zero or random), so the
families stay a test of generalisation, not a memorised set.
"""

from __future__ import annotations

import torch

from circuitspec.tasks.causal import SMALL

SPARSE_SHARE = 0.5  # of the hard rows; the rest are cascades
MAX_NONZERO_P = 0.4  # a sparse operand's digits are non-zero with a per-row probability below this


def hard_digits(n: int, digits: int, opr: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Operands ``x``, ``y`` (LongTensor[n, digits], units first) for rows of operator ``opr`` (0 '+', 1 '-')."""
    device = generator.device

    def rand(*shape):
        return torch.rand(*shape, generator=generator, device=device)

    def digit(low: int, shape) -> torch.Tensor:
        return torch.randint(low, 10, shape, generator=generator, device=device)

    # sparse: each digit non-zero with a per-row probability in [0, MAX_NONZERO_P)
    p = rand(n, 1) * MAX_NONZERO_P
    sx = torch.where(rand(n, digits) < p, digit(1, (n, digits)), 0)
    sy = torch.where(rand(n, digits) < p, digit(1, (n, digits)), 0)
    # cascade: carry (borrow) at column c, ties at c+1 .. c+k, the rest zero or uniform
    start = torch.randint(0, digits, (n, 1), generator=generator, device=device)
    length = (rand(n, 1) * (digits - start)).long()
    col = torch.arange(digits, device=device)[None, :]
    carry_col = col == start
    tie_col = (col > start) & (col <= start + length)
    zero_rest = rand(n, 1) < 0.5
    cx = torch.where(zero_rest, 0, digit(0, (n, digits)))
    cy = torch.where(zero_rest, 0, digit(0, (n, digits)))
    sub = opr[:, None] == 1
    # carry pairs: a + b >= 10 (a in 1..9, b in 10-a..9); borrow pairs: a < b (b in 1..9, a in 0..b-1)
    hi = digit(1, (n, digits))
    lo = (rand(n, digits) * hi).long()  # 0 .. hi-1
    carry_x = torch.where(sub, lo, hi)
    carry_y = torch.where(sub, hi, 9 - lo)
    tie_x = digit(0, (n, digits))
    tie_y = torch.where(sub, tie_x, 9 - tie_x)
    cx = torch.where(carry_col, carry_x, torch.where(tie_col, tie_x, cx))
    cy = torch.where(carry_col, carry_y, torch.where(tie_col, tie_y, cy))
    sparse = rand(n, 1) < SPARSE_SHARE
    return torch.where(sparse, sx, cx).to(SMALL), torch.where(sparse, sy, cy).to(SMALL)
