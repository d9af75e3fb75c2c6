"""The README's main job from an empty facts cache: default ``--jobs`` against ``--jobs 1``, in one run.

    python benchmarks/main_job.py [--specs 'specs/*.yaml'] [--models SELECTOR] [--order default-first|one-first] [--keep DIR]

Runs ``circuitspec verify SPECS --out DIR --fresh`` twice as a new user would (a subprocess each,
each with its own empty ``CIRCUITSPEC_CACHE`` and report folder): once with the default ``--jobs``
(the usable CPU cores, one torch thread per worker) and once with ``--jobs 1``. Prints the wall
time of each, the ratio, the CPU time each used (user + system, worker processes included: on a
machine shared with other work, wall time stretches and CPU time much less), each run's per-model
wall times and the machine's load average before and after each run (other work on the machine
stretches wall time), and checks that both wrote byte-identical
``report.json`` (the verdicts must not depend on ``--jobs``). Exit status 1 if they differ or a run
fails (exit codes 0 and 1 are verdicts; 2 and up are errors).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(specs: list[str], models: str | None, jobs: int | None, work: Path) -> tuple[float, int, str, bytes, float]:
    """One main job in a subprocess; returns (seconds, exit code, its stdout, report.json bytes, CPU seconds)."""
    label = "default" if jobs is None else f"jobs{jobs}"
    out, cache = work / f"report-{label}", work / f"cache-{label}"
    cache.mkdir()
    cmd = [sys.executable, "-m", "circuitspec.cli", "verify", *specs, "--out", str(out), "--fresh", "--quiet"]
    if models:
        cmd += ["--models", models]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    env = dict(os.environ, CIRCUITSPEC_CACHE=str(cache), COLUMNS="160")
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode not in (0, 1):
        sys.exit(f"{label} run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    report = (out / "report.json").read_bytes()
    return seconds, done.returncode, done.stdout, report, cpu


def timing_lines(stdout: str) -> list[str]:
    """The 'wall time per model' table the CLI prints."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if "wall time per model" in line), None)
    return [] if start is None else lines[start:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default="specs/*.yaml", help="glob of spec files, relative to the repository")
    ap.add_argument("--models", default=None, help="--models selector (default: the shipped zoo)")
    ap.add_argument("--order", choices=("default-first", "one-first"), default="default-first")
    ap.add_argument("--keep", default=None, help="write both runs' report folders and caches here (a new folder) and keep them")
    a = ap.parse_args(argv)
    specs = sorted(glob.glob(str(ROOT / a.specs)))
    if not specs:
        sys.exit(f"no spec files match {a.specs}")
    from circuitspec.verify.executors import default_jobs

    cores = default_jobs()
    order = [None, 1] if a.order == "default-first" else [1, None]
    results = {}
    if a.keep:
        Path(a.keep).mkdir(parents=True)  # refuses an existing folder: never mix two runs' reports
    with contextlib.nullcontext(a.keep) if a.keep else tempfile.TemporaryDirectory(prefix="circuitspec-main-job-") as tmp:
        for jobs in order:
            load_before = os.getloadavg()
            results[jobs] = run(specs, a.models, jobs, Path(tmp))
            seconds, code, cpu = results[jobs][0], results[jobs][1], results[jobs][4]
            before, after = (" / ".join(f"{x:.1f}" for x in la) for la in (load_before, os.getloadavg()))
            print(f"--jobs {cores if jobs is None else jobs}{' (default)' if jobs is None else ''}: {seconds:.1f} s "
                  f"({seconds // 60:.0f} min {seconds % 60:02.0f} s) wall, {cpu:.1f} s CPU, exit {code}; "
                  f"load average (1 / 5 / 15 min) {before} before, {after} after", flush=True)
    default_s, one_s = results[None][0], results[1][0]
    print(f"{len(specs)} specs, {cores} usable cores: --jobs 1 / default = {one_s / default_s:.2f}x")
    for jobs in order:
        print(f"\n--jobs {cores if jobs is None else jobs}:")
        print("\n".join(timing_lines(results[jobs][2])))
    same = results[None][3] == results[1][3]
    print("report.json identical for both runs" if same else "report.json DIFFERS between the runs")
    return 0 if same and results[None][1] == results[1][1] else 1


if __name__ == "__main__":
    sys.exit(main())
