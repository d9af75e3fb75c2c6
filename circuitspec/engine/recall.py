"""Clean passes the engine has already run, kept for the next ``Engine.run`` on the same questions.

The matcher scores a node's placements on one set of counterfactual pairs in several
``Engine.run`` calls (single sites, then head sets, then neuron sets one prefix at a time),
and facts ablate every site over one question set in batches: each call needs the clean
pass of the same base questions and sources. Drawing the pairs already ran the clean model
on those rows, to keep only pairs it answers right. ``CleanPasses`` keeps recent passes and
answers a request from a whole kept batch or, row by row, from the rows of several: a row's
pass does not depend on the other rows of its batch (the engine's tests check it), so a
recalled pass is exactly the one that would be computed. Entries are keyed by content, never
written to (the patched pass copies what it changes), and the least recently used go first
beyond the byte budget.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch

Pass = tuple[torch.Tensor, dict[str, list[torch.Tensor]]]


def _nbytes(entry: Pass) -> int:
    logprobs, cache = entry
    return logprobs.numel() * logprobs.element_size() + sum(t.numel() * t.element_size() for ts in cache.values() for t in ts)


def _row_keys(tokens: torch.Tensor) -> list[bytes]:
    return [row.tobytes() for row in tokens.detach().to("cpu").contiguous().numpy()]


class CleanPasses:
    """A least-recently-used store of clean passes within ``budget`` bytes (0: store nothing)."""

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self._entries: OrderedDict[int, tuple[Pass, int, Hashable, list[bytes]]] = OrderedDict()
        self._batches: dict[Hashable, int] = {}  # (kind, digest of the batch) -> entry
        self._rows: dict[tuple[Hashable, bytes], tuple[int, int]] = {}  # (kind, row) -> (entry, index)
        self._bytes = 0
        self._next = 0
        self.hits = 0
        self.misses = 0

    def get(self, kind: Hashable, tokens: torch.Tensor, compute: Callable[[], Pass]) -> Pass:
        """The pass of kind ``kind`` over ``tokens``: recalled whole or row by row, else ``compute()`` and kept."""
        rows = _row_keys(tokens)
        batch = (kind, hashlib.sha256(b"".join(rows)).hexdigest(), len(rows))
        if batch in self._batches:
            self.hits += 1
            self._entries.move_to_end(self._batches[batch])
            return self._entries[self._batches[batch]][0]
        found = [self._rows.get((kind, r)) for r in rows]
        if rows and all(f is not None for f in found):
            self.hits += 1
            entry = self._assemble(found)  # type: ignore[arg-type]
        else:
            self.misses += 1
            entry = compute()
        self._keep(kind, batch, rows, entry)  # an assembled batch too: the next run asks for it whole
        return entry

    def _keep(self, kind: Hashable, batch: Hashable, rows: list[bytes], entry: Pass) -> None:
        size = _nbytes(entry)
        if size > self.budget:
            return
        eid, self._next = self._next, self._next + 1
        self._entries[eid] = (entry, size, batch, rows)
        self._batches[batch] = eid
        for i, r in enumerate(rows):
            self._rows[(kind, r)] = (eid, i)
        self._bytes += size
        while self._bytes > self.budget:
            old, (_, dropped, old_batch, old_rows) = self._entries.popitem(last=False)
            self._bytes -= dropped
            if self._batches.get(old_batch) == old:
                del self._batches[old_batch]
            for r in old_rows:
                if self._rows.get((old_batch[0], r), (None,))[0] == old:
                    del self._rows[(old_batch[0], r)]

    def _assemble(self, found: list[tuple[int, int]]) -> Pass:
        """One pass whose row j is row ``found[j][1]`` of entry ``found[j][0]``."""
        groups: dict[int, tuple[list[int], list[int]]] = {}
        for j, (eid, i) in enumerate(found):
            self._entries.move_to_end(eid)
            groups.setdefault(eid, ([], []))[0].append(j)
            groups[eid][1].append(i)
        passes = {eid: self._entries[eid][0] for eid in groups}

        def gather(pick: Callable[[Pass], torch.Tensor]) -> torch.Tensor:
            first = pick(next(iter(passes.values())))
            out = first.new_empty((len(found), *first.shape[1:]))
            for eid, (rows, idx) in groups.items():
                out.index_copy_(0, torch.tensor(rows, device=out.device), pick(passes[eid]).index_select(0, torch.tensor(idx, device=out.device)))
            return out

        _, cache = next(iter(passes.values()))
        return gather(lambda p: p[0]), {
            name: [gather(lambda p, name=name, j=j: p[1][name][j]) for j in range(len(layers))] for name, layers in cache.items()
        }
