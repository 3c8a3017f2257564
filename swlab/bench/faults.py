"""Benchmark of the lab under injected faults (``scripts/bench-faults``, issue 13).

Runs ``python -m swlab.run run --profile faults`` at reduced length (``-p duration_s=N``) in a run
directory of its own, as a user would (a child process; its output is kept), then reads the run
directory and prints ``name: value`` lines:

- ``requests``: the samples JMeter sent (both workflows);
- ``lost`` (target 0): the reconciliation's exceptions (the collect stage's record);
- ``faults_injected`` and ``faults_<type>``: the local cloud's counts per fault type;
- ``terminal_pct`` (target 100): the share of Workflow 2 executions in a terminal state;
- ``outcome_<...>``: executions per outcome (succeeded, after retries, degraded, FAILED);
- ``raw_tracebacks_to_user`` (target 0): ``Traceback (most recent call last)`` in the CLI's output, in
  the JTL's response and failure messages, and in the executions' errors and the items' reasons (what
  ``/classify`` and ``GET /images/{id}`` answer); the JTL keeps no response bodies;
- ``run_exit_code``, ``run_s``, ``load_avg_1m``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from swlab.analysis.robustness import outcome_counts, outcomes, terminal_pct
from swlab.run.rundir import open_run

TRACEBACK = "Traceback (most recent call last)"


def count_tracebacks(texts: list[str], tables: dict[str, pd.DataFrame]) -> int:
    """Tracebacks in ``texts`` and in the text columns users see (JTL messages, execution errors, item reasons)."""
    n = sum(t.count(TRACEBACK) for t in texts)
    for table, columns in {
        "jtl": ("responseMessage", "failureMessage"),
        "executions": ("error",),
        "items": ("error",),
    }.items():
        df = tables.get(table)
        for col in columns:
            if df is not None and col in df:
                n += int(df[col].dropna().astype(str).str.count(re.escape(TRACEBACK)).sum())
    return n


def figures(run_dir: Path, cli_output: str, exit_code: int | None) -> dict[str, Any]:
    run = open_run(run_dir)
    manifest = run.manifest()
    tables: dict[str, pd.DataFrame] = {}
    for path in sorted(run.data_dir.glob("*.parquet")):
        tables[path.stem] = pd.read_parquet(path)
    collect = manifest.get("collect") or {}
    faults = manifest.get("faults") or {}
    executions = tables.get("executions", pd.DataFrame(columns=["execution_arn", "status", "error"]))
    states = tables.get("states", pd.DataFrame())
    out: dict[str, Any] = {
        "requests": len(tables.get("jtl", [])),
        "lost": collect.get("lost", "not reconciled"),
        "faults_injected": faults.get("total", 0),
        "terminal_pct": terminal_pct(executions),
        "raw_tracebacks_to_user": count_tracebacks([cli_output], tables),
    }
    if exit_code is not None:
        out["run_exit_code"] = exit_code
    out.update({f"faults_{k}": v for k, v in (faults.get("counts") or {}).items()})
    for row in outcome_counts(outcomes(executions, states)).itertuples():
        out[f"outcome[{row.outcome}]"] = row.executions
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench-faults", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="faults")
    p.add_argument("--duration-s", type=int, default=20, help="load per workflow, seconds (profile: 60)")
    p.add_argument("--run-dir", default="", help="default runs/bench-faults-<time>")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--figures-of", type=Path, help="only read the figures of a run this benchmark already made")
    args = p.parse_args(argv)
    if args.figures_of is not None:
        log = args.figures_of.parent / f"{args.figures_of.name}.cli.log"
        output = log.read_text() if log.exists() else ""
        for name, value in figures(args.figures_of.resolve(), output, None).items():
            print(f"{name}: {value}")
        return 0
    run_dir = Path(args.run_dir or f"runs/bench-faults-{time.strftime('%Y%m%dT%H%M%S')}").resolve()
    cmd = [sys.executable, "-m", "swlab.run", "run", "--profile", args.profile, "--run-dir", str(run_dir)]
    cmd += ["-p", f"duration_s={args.duration_s}"] + [a for kv in args.param for a in ("-p", kv)]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    run_s = time.monotonic() - started
    output = proc.stdout + proc.stderr
    (run_dir.parent / f"{run_dir.name}.cli.log").write_text(output)
    if not (run_dir / "manifest.json").exists():
        print(f"the run did not start (exit {proc.returncode}): {output.strip().splitlines()[-1:]}")
        return 1
    for name, value in figures(run_dir, output, proc.returncode).items():
        print(f"{name}: {value}")
    print(f"run_s: {run_s:.0f}")
    print(f"run_dir: {run_dir}")
    print(f"load_avg_1m: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
