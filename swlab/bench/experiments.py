"""Benchmark of the experiments runner (``scripts/bench-experiments``): a whole experiments profile, measured.

``--quick`` runs ``profiles/experiments-ci.yaml`` (every experiment kind, a few points, a few minutes);
without it, ``profiles/experiments.yaml`` (about 30 minutes). The book is not built (``--book`` builds it).
Prints ``name: value`` lines:

- ``experiments_points``: points planned and run; ``experiments_failed_points`` (target 0);
- ``cold_samples_min``: the fewest cold starts measured for one function (target >= 20 in the full profile);
- ``memory_sizes``: memory sizes at which the memory sweep measured warm invocations;
- ``experiments_wall_s``: the command's wall time, set-up, points, analyses and teardown included;
- ``experiments_estimate_s``: what the planner estimated for the points alone, printed before starting.
"""

from __future__ import annotations

import argparse
import sys
import time

from swlab.analysis.experiment_cold import cold_start_table
from swlab.analysis.experiment_memory import memory_table
from swlab.analysis.points import load_points
from swlab.run.experiments import estimate_seconds, plan_points
from swlab.run.profiles import load_profile
from swlab.run.sweep import run_experiments


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the CI profile (experiments-ci)")
    ap.add_argument("--book", action="store_true", help="also build the book")
    ap.add_argument("--run-dir", default="")
    args = ap.parse_args(argv)
    profile = load_profile("experiments-ci" if args.quick else "experiments")
    estimate = sum(estimate_seconds(plan_points(profile.experiments, profile.parameters)))
    started = time.monotonic()
    result = run_experiments(
        profile, run_dir=args.run_dir, build_book=args.book, say=lambda line: print(line, file=sys.stderr)
    )
    wall = time.monotonic() - started
    points = load_points(result.run.dir)
    cold = cold_start_table([p for p in points if p.record.get("analysis") == "cold_starts"])
    memory = [p for p in points if p.record.get("analysis") == "memory" and p.ok]
    table = memory_table(memory, {"prices": {"lambda_x86_64_usd_per_gb_s": 0.0, "lambda_usd_per_million_requests": 0}})
    sizes = sorted(set(table.loc[table.get("warm_ok", 0) > 0, "memory_mb"])) if len(table) else []
    print(f"run_dir: {result.run.dir}")
    print(f"experiments_points: {len(points)}")
    print(f"experiments_failed_points: {sum(not p.ok for p in points)}")
    print(f"cold_samples_min: {int(cold['cold_n'].min()) if len(cold) else 0}")
    print(f"memory_sizes: {len(sizes)} ({', '.join(str(int(s)) for s in sizes)} MB)")
    print(f"experiments_estimate_s: {estimate:.0f}")
    print(f"experiments_wall_s: {wall:.0f}")
    print(f"stages_ok: {result.ok}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
