"""Measured accuracy: failures per million on uniform questions, per-class accuracy, intervals.

A question fails when any answer token's teacher-forced argmax (logits at position
p-1 for the token at p, gold prefix given) differs from the gold token. Uniform
questions are generated in fixed blocks of ``GEN_BLOCK`` rows from a generator seeded
by the caller, so the set evaluated depends only on (seed, questions), not on the
compute chunk size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from circuitspec.heap import keep_freed_memory
from circuitspec.models.card import ClassResult, Interval, Results, UniformResult
from circuitspec.tasks.families import DEFAULT_SEED as FAMILY_SEED, DEFAULT_SIZE as FAMILY_SIZE

GEN_BLOCK = 10_000
# Rows per forward pass. On a CPU, blocks of thousands of rows allocate activations
# above glibc's mmap threshold on every pass, and page faults then cost as much as the
# arithmetic (measured: 4096 rows 19.6 s wall for 9.5 s of compute; 256 rows 8.5 s).
CPU_CHUNK = 256
GPU_CHUNK = 4096
DEFAULT_QUESTIONS = 1_000_000
DEFAULT_PER_CLASS = 10_000
DEFAULT_SEED = 20240217

Progress = Callable[[int, int], None]  # (done, total)


# --- Clopper-Pearson ------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """x with I_x(a, b) = q, by bisection (I is increasing in x)."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * max(hi, 1e-300):
            break
    return 0.5 * (lo + hi)


def clopper_pearson(failures: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval on a binomial proportion, as (low, high) in [0, 1]."""
    if n <= 0 or not 0 <= failures <= n:
        raise ValueError(f"need 0 <= failures <= n and n > 0, got {failures}, {n}")
    alpha = 1.0 - confidence
    low = 0.0 if failures == 0 else beta_quantile(alpha / 2, failures, n - failures + 1)
    high = 1.0 if failures == n else beta_quantile(1 - alpha / 2, failures + 1, n - failures)
    return low, high


def per_million_interval(failures: int, n: int, confidence: float = 0.95) -> Interval:
    low, high = clopper_pearson(failures, n, confidence)
    return Interval(low=low * 1e6, high=high * 1e6, confidence=confidence)


# --- forward passes ---------------------------------------------------------------------------


def answer_logits(bridge, tokens: torch.Tensor, n_answer: int) -> torch.Tensor:
    """Logits [B, n_answer, d_vocab] at the positions that predict the answer tokens."""
    n_ctx = tokens.shape[1]
    logits = bridge(tokens)
    return logits[:, n_ctx - n_answer - 1 : n_ctx - 1]


def default_chunk(device: torch.device) -> int:
    return CPU_CHUNK if device.type == "cpu" else GPU_CHUNK


@torch.no_grad()
def predictions(model, tokens: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Teacher-forced argmax answer tokens [B, n_answer]."""
    keep_freed_memory()
    n_answer = model.task.n_answer
    device = next(model.bridge.parameters()).device
    chunk = chunk or default_chunk(device)
    out = [
        answer_logits(model.bridge, tokens[s : s + chunk].long().to(device), n_answer).argmax(-1).cpu()
        for s in range(0, len(tokens), chunk)
    ]
    return torch.cat(out) if out else torch.zeros(0, n_answer, dtype=torch.long)


@torch.no_grad()
def wrong_answers(bridge, tokens: torch.Tensor, n_answer: int, chunk: int | None = None) -> torch.Tensor:
    """Bool [B, n_answer]: which answer tokens the teacher-forced argmax gets wrong."""
    device = next(bridge.parameters()).device
    chunk = chunk or default_chunk(device)
    out = []
    for start in range(0, tokens.shape[0], chunk):
        block = tokens[start : start + chunk].to(device)
        pred = answer_logits(bridge, block, n_answer).argmax(-1)
        out.append((pred != block[:, -n_answer:]).cpu())
    return torch.cat(out) if out else torch.zeros(0, n_answer, dtype=torch.bool)


def failed(bridge, tokens: torch.Tensor, n_answer: int, chunk: int | None = None) -> torch.Tensor:
    """Bool [B]: questions with at least one wrong answer token."""
    return wrong_answers(bridge, tokens, n_answer, chunk).any(-1)


# --- answering many batches: here or in worker processes -----------------------------------------

Predict = Callable[[Sequence[torch.Tensor]], Iterator[tuple[int, torch.Tensor]]]
"""Answers of many token batches: yields (index, predicted answer tokens [B, n_answer]) in any order."""


def in_process(model, chunk: int | None = None) -> Predict:
    """A ``Predict`` that answers the batches one by one in this process."""

    def predict(batches: Sequence[torch.Tensor]) -> Iterator[tuple[int, torch.Tensor]]:
        for i, tokens in enumerate(batches):
            yield i, predictions(model, tokens, chunk)

    return predict


_WORKER_MODELS: dict[str, Any] = {}  # per worker process: models loaded so far, by card path


def answer_batch(item: tuple[str, int, torch.Tensor], emit: Any = None) -> torch.Tensor:
    """Work unit of a parallel ``Predict`` (``circuitspec zoo eval --jobs``): ``(card path, torch
    threads, tokens)`` -> predicted answer tokens (uint8). The worker loads the model once."""
    from circuitspec.models.zoo import load

    path, threads, tokens = item
    if threads:
        torch.set_num_threads(threads)
    if path not in _WORKER_MODELS:
        _WORKER_MODELS[path] = load(path)
        _WORKER_MODELS[path].bridge.eval()
    return predictions(_WORKER_MODELS[path], tokens).to(torch.uint8)


def compact(tokens: torch.Tensor) -> torch.Tensor:
    """Tokens as uint8 (arithmetic vocabularies are small): an eighth of the memory while
    batches wait, and of the bytes sent to worker processes."""
    return tokens.to(torch.uint8) if tokens.numel() == 0 or int(tokens.max()) < 256 else tokens


def answer_all(predict: Predict, batches: Sequence[torch.Tensor], progress: Progress | None = None) -> list[torch.Tensor]:
    """Predictions of every batch, in batch order; ``progress(rows done, rows in all)`` as batches finish."""
    out: list[torch.Tensor | None] = [None] * len(batches)
    total, done = sum(len(b) for b in batches), 0
    for i, pred in predict(batches):
        out[i] = pred
        done += len(batches[i])
        if progress:
            progress(done, total)
    return out  # type: ignore[return-value]


def _wrong(tokens: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """Bool [B]: some answer token of the prediction differs from the question's gold answer."""
    return (predicted.long() != tokens[:, -predicted.shape[1] :].long()).any(-1)


@contextmanager
def _evaluating(model):
    was_training = model.bridge.training
    model.bridge.eval()
    try:
        yield
    finally:
        model.bridge.train(was_training)


# --- measurements ------------------------------------------------------------------------------


def uniform_blocks(task, questions: int, seed: int) -> list[torch.Tensor]:
    """The uniform questions of (seed, questions), in ``GEN_BLOCK``-row blocks from one generator."""
    g = torch.Generator().manual_seed(seed)
    return [compact(task.generate(min(GEN_BLOCK, questions - done), g)) for done in range(0, questions, GEN_BLOCK)]


def uniform_result(op: str, blocks: Sequence[torch.Tensor], predicted: Sequence[torch.Tensor], seed: int) -> UniformResult:
    questions = sum(len(b) for b in blocks)
    fails = sum(int(_wrong(b, p).sum()) for b, p in zip(blocks, predicted))
    return UniformResult(
        op=op,
        questions=questions,
        failures=fails,
        failures_per_million=fails * 1e6 / questions,
        interval=per_million_interval(fails, questions),
        seed=seed,
    )


def uniform_failures(
    model,
    questions: int = DEFAULT_QUESTIONS,
    seed: int = DEFAULT_SEED,
    *,
    task=None,
    chunk: int | None = None,
    progress: Progress | None = None,
    predict: Predict | None = None,
) -> UniformResult:
    """Failures per million on ``questions`` uniform questions from ``task`` (default: the model's)."""
    task = task if task is not None else model.task
    blocks = uniform_blocks(task, questions, seed)
    with _evaluating(model):
        predicted = answer_all(predict or in_process(model, chunk), blocks, progress)
    return uniform_result(getattr(task, "op", model.card.task.op), blocks, predicted, seed)


def class_batches(task, per_class: int, seed: int) -> dict[str, torch.Tensor]:
    """``per_class`` questions of every class that exists at the task's digit count."""
    return {
        cls: compact(task.generate(per_class, torch.Generator().manual_seed(seed * 1000 + i), cls=cls))
        for i, cls in enumerate(task.available_classes())
    }


def class_results(batches: dict[str, torch.Tensor], predicted: Sequence[torch.Tensor]) -> dict[str, ClassResult]:
    out = {}
    for (cls, tokens), pred in zip(batches.items(), predicted):
        fails = int(_wrong(tokens, pred).sum())
        out[cls] = ClassResult(questions=len(tokens), failures=fails, accuracy=1 - fails / len(tokens))
    return out


def class_accuracy(
    model, per_class: int = DEFAULT_PER_CLASS, seed: int = DEFAULT_SEED + 1, *, chunk: int | None = None,
    progress: Progress | None = None, predict: Predict | None = None,
) -> dict[str, ClassResult]:
    """Accuracy on a class-stratified set of ``per_class`` questions for every class that exists at the model's digit count."""
    batches = class_batches(model.task, per_class, seed)
    with _evaluating(model):
        predicted = answer_all(predict or in_process(model, chunk), list(batches.values()), progress)
    return class_results(batches, predicted)


def ops_of(op: str) -> list[str]:
    return ["add", "sub"] if op == "mix" else [op]


def measure(
    model,
    questions: int = DEFAULT_QUESTIONS,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = DEFAULT_SEED,
    *,
    final_loss: float | None = None,
    chunk: int | None = None,
    progress: Progress | None = None,
    family_size: int = FAMILY_SIZE,
    search: int = 0,
    predict: Predict | None = None,
) -> Results:
    """The card's results: uniform failures (and, for mixed models, per operation), per-class accuracy,
    the hard-question families at ``family_size`` (0: none) and a ``search`` of that many structured questions.

    Mixed models are measured on ``questions / 2`` addition and ``questions / 2``
    subtraction questions; ``uniform`` is their total. Every batch of questions is drawn
    first and answered in one ``predict`` call (``in_process`` by default; worker processes
    for ``zoo eval --jobs``), so the figures do not depend on who answers.
    ``progress(rows done, rows in all)``.
    """
    from circuitspec.models.families import family_batches, family_results
    from circuitspec.models.search import search as search_failures
    from circuitspec.models.zoo import make_task

    start = time.perf_counter()
    ops = ops_of(model.card.task.op)
    share = [questions] if len(ops) == 1 else [questions // 2, questions - questions // 2]
    tasks = [model.task] if len(ops) == 1 else [make_task(op, model.card.task.digits, model.card.task.layout) for op in ops]
    uniform = [uniform_blocks(t, n, seed + i) for i, (t, n) in enumerate(zip(tasks, share))]
    classes = class_batches(model.task, per_class, seed + 17) if per_class > 0 else {}
    fams = family_batches(model, family_size) if family_size else []
    batches = [b for blocks in uniform for b in blocks] + list(classes.values()) + [t for _, t in fams]
    with _evaluating(model):
        answers = iter(answer_all(predict or in_process(model, chunk), batches, progress))
        per_op = {op: uniform_result(op, blocks, [next(answers) for _ in blocks], seed + i) for i, (op, blocks) in enumerate(zip(ops, uniform))}
        class_res = class_results(classes, [next(answers) for _ in classes])
        family_res = family_results(model, fams, [next(answers) for _ in fams], family_size, FAMILY_SEED)
    if len(ops) == 1:
        result, per_op = per_op[ops[0]], {}
    else:
        fails = sum(r.failures for r in per_op.values())
        result = UniformResult(
            op=model.card.task.op, questions=questions, failures=fails, failures_per_million=fails * 1e6 / questions,
            interval=per_million_interval(fails, questions), seed=seed,
        )
    return Results(
        final_loss=final_loss,
        uniform=result,
        per_op=per_op,
        per_class=class_res,
        class_seed=seed + 17 if per_class > 0 else None,
        families=family_res,
        search=search_failures(model, search) if search else None,
        eval_seconds=round(time.perf_counter() - start, 1),
    )
