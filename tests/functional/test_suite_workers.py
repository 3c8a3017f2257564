"""The test suite's own parallel run: ``scripts/test`` runs two pytest-xdist workers with ``--dist loadgroup``,
and tests/conftest.py sends each file's tests to one worker (its module fixtures — a deployed stack, a started
JMeter — run once, and its order-dependent tests stay in order). With pytest 9.2 and xdist 3.8 the
``xdist_group`` marks alone did not do it: every test travelled alone.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ["tests/unit/test_iam.py", "tests/unit/test_asl.py"]


def test_each_files_tests_run_on_one_worker():
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider", *FILES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    workers: dict[str, set[str]] = defaultdict(set)
    for line in run.stdout.splitlines():
        found = re.match(r"\[(gw\d+)\] \[\s*\d+%\] PASSED (\S+?)::", line)
        if found:
            workers[found.group(2)].add(found.group(1))
    assert set(workers) == set(FILES), run.stdout[-3000:]
    assert all(len(ran_on) == 1 for ran_on in workers.values()), dict(workers)
