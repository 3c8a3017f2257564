"""The local cloud's own smoke check (python -m swlab.bench.localcloud_smoke) passes on a fresh cloud."""

import pytest

from swlab.bench.localcloud_smoke import run_smoke

pytestmark = pytest.mark.functional


def test_every_smoke_check_passes_and_cleans_up(lab_settings, aws):
    lines: list[str] = []
    assert run_smoke(lab_settings, say=lines.append), "\n".join(lines)
    assert [line.split()[0] for line in lines] == ["ok"] * 4
    assert not [b for b in aws("s3").list_buckets()["Buckets"] if b["Name"].startswith("swlab-smoke-")]
    assert not [f for f in aws("lambda").list_functions()["Functions"] if f["FunctionName"].startswith("swlab-smoke-")]
