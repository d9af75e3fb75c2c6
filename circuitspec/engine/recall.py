"""Clean passes the engine has already run, kept for the next ``Engine.run`` on the same questions.

The matcher scores a node's placements on one set of counterfactual pairs in several
``Engine.run`` calls (single sites, then head sets, then neuron sets one prefix at a time),
and facts ablate every site over one question set in batches: each call needs the clean
pass of the same base questions and sources. ``CleanPasses`` keeps recent ones, keyed by
the tokens' content (so a copy of the same questions hits too), and drops the least
recently used beyond its byte budget. A pass is a pure function of the weights and the
tokens, so a recalled pass is exactly the one that would be computed; entries are never
written to (the patched pass copies what it changes).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

Pass = tuple[torch.Tensor, dict[str, list[torch.Tensor]]]


def _nbytes(entry: Pass) -> int:
    logprobs, cache = entry
    return logprobs.numel() * logprobs.element_size() + sum(t.numel() * t.element_size() for ts in cache.values() for t in ts)


def tokens_key(tokens: torch.Tensor) -> str:
    """A digest of a token batch's shape and content."""
    h = hashlib.sha256(str(tuple(tokens.shape)).encode())
    h.update(tokens.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


class CleanPasses:
    """A least-recently-used store of clean passes within ``budget`` bytes (0: store nothing)."""

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self._entries: OrderedDict[tuple, tuple[Pass, int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, kind: Any, tokens: torch.Tensor, compute: Callable[[], Pass]) -> Pass:
        """The pass of kind ``kind`` over ``tokens``: recalled, or ``compute()`` and kept."""
        key = (kind, tokens_key(tokens))
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]
        self.misses += 1
        entry = compute()
        size = _nbytes(entry)
        if size <= self.budget:
            self._entries[key] = (entry, size)
            self._bytes += size
            while self._bytes > self.budget:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return entry
