"""``scripts/bench-experiments``'s figures, printed from a small experiments run directory (``--from``)."""

from __future__ import annotations

import pandas as pd
import pytest

from swlab.analysis.dataset import RunData, save_run
from swlab.bench import experiments as bench
from swlab.run.records import PointRecord
from tests.unit.test_sweep_points import _invocations, _run, _write_point

pytestmark = pytest.mark.unit


def _record(run, index, experiment, analysis, mode, config, **extra):
    run.point(index).save(
        PointRecord(
            index=index, experiment=experiment, analysis=analysis, mode=mode, config=config, status="ok", **extra
        )
    )


def _executions(name: str, ms: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "execution_arn": [f"arn:x:{name}:{i}" for i in range(4)],
            "state_machine": ["st-classify"] * 4,
            "start_date": pd.date_range("2026-01-01T00:00:10Z", periods=4, freq="s"),
            "stop_date": pd.date_range("2026-01-01T00:00:11Z", periods=4, freq="s"),
            "status": ["SUCCEEDED"] * 4,
            "duration_ms": [ms, ms + 10, ms + 20, ms + 30],
        }
    )


def _fake_run(tmp_path):
    run = _run(tmp_path)
    run.record("experiments", {"declared": [], "estimate_s": 200.0, "plan": []})
    run.record("stages", [{"name": "00_setup", "seconds": 30.0}, {"name": "points", "seconds": 250.0}])
    run.record("total_seconds", 400.0)
    run.record("default_memory_mb", {"resnet": 1280, "flip": 512})
    inv = _invocations({"resnet": (4000.0, 300.0, 100.0, 1280), "flip": (50.0, 20.0, 10.0, 512)})

    def probes(cold_ms):
        return pd.DataFrame(
            {
                "workflow": ["wf2"] * 2,
                "kind": ["cold", "warm"],
                "sent_at": ["t"] * 2,
                "status": [200] * 2,
                "ms": [cold_ms, 450.0],
            }
        )

    for k in (1, 2):  # forced cold starts, on-demand everywhere: Workflow 2's first request 9 s
        _write_point(run, k, "cold_starts", {}, {"workflows": ["wf2"]}, inv, probes(9000.0))
        _record(run, k, "cold_starts", "cold_starts", "cold", {"workflows": ["wf2"]})
    # the same with provisioned concurrency on resnet: 2.5 s
    _write_point(run, 3, "cold_provisioned", {}, {}, inv, probes(2500.0))
    provisioned = {"workflows": ["wf2"], "deploy_options": {"provisioned_concurrency": {"resnet": 1}}}
    _record(run, 3, "cold_provisioned", "cold_starts", "cold", provisioned)
    # the memory sweep: resnet twice as fast at 1024 MB as at 512, flip the same
    for k, mb in ((4, 512), (5, 1024)):
        inv_mb = _invocations({"resnet": (4000.0, 300.0, 100.0 * 1024 / mb, mb), "flip": (50.0, 20.0, 10.0, mb)})
        _write_point(run, k, "memory", {"memory_mb.*": mb}, {"memory_mb": {"*": mb}}, inv_mb)
    _write_point(run, 6, "memory", {"memory_mb.*": 128}, {"memory_mb": {"*": 128}}, None, status="failed")
    # its check points: Workflow 2 measured at the balanced sizes (715 ms median), then at the defaults (1415 ms)
    for k, choice, ms in ((7, "balanced", 700.0), (8, "default", 1400.0)):
        _write_point(run, k, "memory", {"memory_choice": choice}, {"memory_choice": choice}, inv)
        save_run(
            RunData(manifest={}, tables={"invocations": inv, "executions": _executions(choice, ms)}),
            run.point(k).data_dir,
        )
    # two load steps: the runner waited 12.5 s and 3 s for their executions; one was still running
    for k, rate, waited, running in ((9, 1.0, 3.0, 0), (10, 2.0, 12.5, 1)):
        _write_point(run, k, "load", {"rate_per_s": rate}, {}, inv)
        jtl = pd.DataFrame(
            {
                "label": ["classify"] * 4,
                "timeStamp": pd.date_range("2026-01-01T00:00:10Z", periods=4, freq="s"),
                "elapsed": [500, 510, 520, 530],
                "success": [True] * 4,
                "responseCode": ["200"] * 4,
            }
        )
        save_run(RunData(manifest={}, tables={"invocations": inv, "jtl": jtl}), run.point(k).data_dir)
        config = {"workflows": ["wf2"], "rate_per_s": rate, "duration_s": 4}
        _record(
            run,
            k,
            "load",
            "load",
            "load",
            config,
            axes={"rate_per_s": rate},
            drained={"waited_s": waited, "running": running},
        )
    return run


def test_the_bench_prints_cold_provisioned_memory_check_drain_and_estimate_figures(tmp_path, capsys):
    run = _fake_run(tmp_path)
    assert bench.main(["--from", str(run.dir)]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["experiments_points"] == "10" and lines["experiments_failed_points"] == "1"
    assert lines["cold_samples_min"] == "4"  # 2 cold starts in each on-demand point (not the provisioned one)
    assert lines["cold_total_ms_resnet"] == "4300"  # Init 4000 + Duration 300, the provisioned point left out
    assert lines["wf2_cold_client_ms_without"] == "9000"
    assert lines["wf2_cold_client_ms_provisioned"] == "2500"
    assert lines["wf2_cold_execution_ms_without"] == "n/a"  # the cold points recorded no executions here
    assert lines["provisioned_speedup"] == "3.6x (client; models resnet 1)"
    assert lines["memory_sizes"] == "2 (512, 1024 MB)"
    # the estimate: flip 13 ms + resnet 103 ms (warm medians at the balanced sizes 512 / 1024, and at the
    # defaults' nearest measured sizes), against 715 and 1415 ms measured
    assert lines["memory_verify_balanced"].startswith("measured 715 ms end to end (median execution), estimated 116 ms")
    assert "(-84 %)" in lines["memory_verify_balanced"] and lines["memory_verify_balanced"].endswith("[ok]")
    assert lines["memory_verify_default"].startswith("measured 1415 ms end to end (median execution), estimated 116 ms")
    assert lines["memory_verify_error_pct_max"] == "-92"
    assert lines["drain_wait_s"] == "15.5 over 2 load points (longest 12.5 s: point 10, load rate_per_s=2.0)"
    assert lines["running_at_collect"] == "1"
    assert lines["experiments_estimate_s"] == "200" and lines["experiments_points_s"] == "250"
    assert lines["estimate_ratio"] == "1.25" and lines["experiments_wall_s"] == "400"


def test_a_run_without_provisioned_points_memory_checks_or_load_says_so(tmp_path, capsys):
    run = _run(tmp_path)
    inv = _invocations({"resnet": (4000.0, 300.0, 100.0, 1280)})
    _write_point(run, 1, "cold_starts", {}, {}, inv)
    assert bench.main(["--from", str(run.dir)]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["provisioned_speedup"] == "n/a (no point with provisioned concurrency)"
    assert lines["memory_sizes"] == "0 (none)" and lines["memory_verify_error_pct_max"] == "n/a"
    assert lines["drain_wait_s"] == "n/a (no load point recorded a drain)"
    assert lines["experiments_estimate_s"] == "n/a" and lines["experiments_wall_s"] == "n/a"


def test_from_a_directory_that_is_not_a_run_is_one_line(tmp_path, capsys):
    assert bench.main(["--from", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path} is not a run directory (no manifest.json)"
