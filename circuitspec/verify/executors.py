"""Executors: run independent work items (one per model) in this process, in processes, or on Ray.

An executor takes a picklable function ``fn(item, emit)`` and a list of picklable items and yields
``(index, result)`` as items finish, in completion order; the caller orders results itself, so the
outcome never depends on the executor. In parallel, items with a ``cost`` (a number) start heaviest
first, so that a slow model does not start last while the other workers run out of work. ``emit`` is how a running item reports progress events to
the caller's ``on_event`` (in this process directly, from worker processes through a queue; Ray
tasks report only when they finish). The first item that raises stops the run: pending items are
cancelled and the error is re-raised in the caller (a ``CircuitSpecError`` keeps its type).

- ``LocalExecutor(jobs)`` runs items one by one in this process when ``jobs`` is 1 (or there is one
  item), else in a ``concurrent.futures`` process pool with the *spawn* start method (no forked
  torch state). ``jobs`` defaults to ``default_jobs()``, the CPU cores this process may use: each
  worker runs torch on one thread, so one worker per core keeps every core busy without threads
  of different workers competing for the same core.
- ``RayExecutor()`` submits each item as a Ray task (``pip install 'circuitspec[ray]'``). It uses
  the Ray instance already initialised in this process, else connects to ``address`` (or
  ``$RAY_ADDRESS``), else starts a local instance with ``jobs`` CPUs.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_mod
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from circuitspec.errors import CircuitSpecError, unknown

EXECUTORS = ("local", "ray")


def default_jobs() -> int:
    """The CPU cores this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity API (macOS, Windows)
        return max(1, os.cpu_count() or 1)

Emit = Callable[[Any], None]
WorkFn = Callable[[Any, Emit | None], Any]


class Executor:
    """Runs ``fn(item, emit)`` over items; yields (index, result) as they finish."""

    name = "base"

    def run(self, fn: WorkFn, items: Sequence[Any], on_event: Emit | None = None) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError


def start_order(items: Sequence[Any]) -> list[int]:
    """Indices of ``items``, heaviest ``cost`` first (ties and cost-less items keep their order)."""
    return sorted(range(len(items)), key=lambda i: -getattr(items[i], "cost", 0))


class _QueueEmit:
    """A picklable ``emit`` for worker processes: puts events on a manager queue."""

    def __init__(self, q) -> None:
        self.q = q

    def __call__(self, event: Any) -> None:
        self.q.put(event)


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, jobs: int | None = None) -> None:
        jobs = default_jobs() if jobs is None else jobs
        if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
            raise CircuitSpecError(f"--jobs must be a positive integer, got {jobs!r}")
        self.jobs = jobs

    def run(self, fn: WorkFn, items: Sequence[Any], on_event: Emit | None = None) -> Iterator[tuple[int, Any]]:
        if self.jobs == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                yield i, fn(item, on_event)
            return
        yield from self._pool(fn, items, on_event)

    def _pool(self, fn: WorkFn, items: Sequence[Any], on_event: Emit | None) -> Iterator[tuple[int, Any]]:
        ctx = multiprocessing.get_context("spawn")
        manager = ctx.Manager() if on_event is not None else None
        q = manager.Queue() if manager is not None else None
        stop = threading.Event()

        def drain() -> None:
            while not stop.is_set() or not q.empty():
                try:
                    event = q.get(timeout=0.1)
                except queue_mod.Empty:
                    continue
                except (EOFError, OSError):  # manager gone
                    return
                on_event(event)

        drainer = threading.Thread(target=drain, daemon=True) if q is not None else None
        if drainer is not None:
            drainer.start()
        pool = ProcessPoolExecutor(max_workers=min(self.jobs, len(items)), mp_context=ctx)
        try:
            emit = _QueueEmit(q) if q is not None else None
            futures = {pool.submit(fn, items[i], emit): i for i in start_order(items)}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=futures.__getitem__):
                    result = fut.result()  # re-raises the worker's exception
                    yield futures[fut], result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            stop.set()
            if drainer is not None:
                drainer.join(timeout=5)
            if manager is not None:
                manager.shutdown()


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, *, jobs: int | None = None, num_cpus_per_item: float = 1) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise CircuitSpecError(
                "the ray executor needs Ray, which is not installed",
                hint="pip install 'circuitspec[ray]' (or pip install ray), or use --executor local",
            ) from None
        self.address = address
        self.jobs = default_jobs() if jobs is None else jobs
        self.num_cpus_per_item = num_cpus_per_item

    def run(self, fn: WorkFn, items: Sequence[Any], on_event: Emit | None = None) -> Iterator[tuple[int, Any]]:
        import ray

        if not ray.is_initialized():
            if self.address is None and not os.environ.get("RAY_ADDRESS"):
                # a local instance sized like --jobs
                ray.init(num_cpus=self.jobs, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=self.address, log_to_driver=False)
        remote = ray.remote(num_cpus=self.num_cpus_per_item, max_retries=0)(fn)
        refs = {remote.remote(items[i], None): i for i in start_order(items)}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:
                        cause = getattr(err, "cause", None)
                        if isinstance(cause, BaseException):
                            raise cause from None
                        raise
                    yield refs[ref], result
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


def make_executor(name: str, *, jobs: int | None = None, address: str | None = None) -> Executor:
    """The executor called ``name`` ('local' or 'ray'); ``jobs`` None: ``default_jobs()``."""
    if name == "local":
        return LocalExecutor(jobs)
    if name == "ray":
        if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
            raise CircuitSpecError(f"--jobs must be a positive integer, got {jobs!r}")
        return RayExecutor(address=address, jobs=jobs)
    raise unknown("executor", name, EXECUTORS)
