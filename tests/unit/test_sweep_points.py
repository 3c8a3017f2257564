"""Point directories, a failing point, and re-analysis of an experiments run from its directory alone."""

import json

import pandas as pd

from swlab.analysis import experiment_cold as cold_ex
from swlab.analysis import experiment_common as common_ex
from swlab.analysis import experiment_memory as memory_ex
from swlab.analysis.dataset import RunData, save_run
from swlab.analysis.points import load_points
from swlab.run.experiments import parse_experiments, plan_points
from swlab.run.records import PointRecord
from swlab.run.rundir import RunDir
from swlab.run.sweep import run_points


def _run(tmp_path) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.dir.mkdir()
    run.record("run_id", "run")
    run.record("settings", {"target": "local", "stack": "st", "region": "us-east-1"})
    run.record("provenance", {"git": {"commit": "abc"}})
    return run


def test_every_point_gets_its_directory_configuration_and_provenance_and_a_failure_does_not_stop_the_rest(tmp_path):
    run = _run(tmp_path)
    points = plan_points(parse_experiments([{"name": "m", "axes": {"memory_mb.*": [128, 256, 512]}}]))
    seen, lines = [], []

    def body(prun, point, stage):
        stage("deploy")
        seen.append(point.index)
        if point.axes["memory_mb.*"] == 256:
            raise RuntimeError("InvalidParameterValueException: MemorySize\nmust be >= 128")
        stage("collect")
        return {"measured_from": "2026-01-01T00:00:00+00:00"}

    records = run_points(run, points, body, say=lines.append)
    assert seen == [1, 2, 3]
    assert [r.status for r in records] == ["ok", "failed", "ok"]
    failed = RunDir(run.points_dir / "002").load(PointRecord)
    assert (
        failed.stage == "deploy"
        and failed.error == "RuntimeError: InvalidParameterValueException: MemorySize must be >= 128"
    )
    for k, mb in ((1, 128), (3, 512)):
        prun = run.point(k)
        manifest = prun.manifest()
        assert manifest["parameters"]["memory_mb"] == {"*": mb}
        assert manifest["provenance"] == {"git": {"commit": "abc"}}
        assert manifest["settings"]["stack"] == "st"
        rec = prun.load(PointRecord)
        assert rec.status == "ok" and set(rec.seconds) == {"deploy", "collect"}
    assert [p["status"] for p in run.manifest()["points"]] == ["ok", "failed", "ok"]
    assert any(
        line.startswith("[point 2/3] m memory_mb.*=256 (rep 1) · deploy · ") and "left" in line for line in lines
    )
    assert any("[point 2/3] FAILED in deploy" in line for line in lines)


def _invocations(fn_durations, cold_every=3):
    rows = []
    t0 = pd.Timestamp("2026-01-01T00:00:10Z")
    for fn, (init, cold_ms, warm_ms, mem) in fn_durations.items():
        for i in range(6):
            cold = i % cold_every == 0
            d = cold_ms if cold else warm_ms + i
            rows.append(
                {
                    "function": f"st-{fn}",
                    "start_time": t0 + pd.Timedelta(seconds=i),
                    "cold": cold,
                    "init_duration_ms": init if cold else None,
                    "duration_ms": float(d),
                    "billed_duration_ms": float(int(d) + 1),
                    "memory_size_mb": mem,
                    "status": None,
                    "error_type": None,
                }
            )
    return pd.DataFrame(rows)


def _write_point(run, index, experiment, axes, config, invocations, probes=None, status="ok"):
    prun = run.point(index)
    prun.dir.mkdir(parents=True)
    prun.record("settings", {"stack": "st", "target": "local"})
    prun.save(
        PointRecord(index=index, experiment=experiment, analysis=experiment, axes=axes, config=config, status=status)
    )
    if status == "ok":
        save_run(RunData(manifest={}, tables={"invocations": invocations}), prun.data_dir)
    if probes is not None:
        probes.to_csv(prun.path("probes.csv"), index=False)


def test_re_analysis_from_the_run_directory_alone(tmp_path):
    run = _run(tmp_path)
    run.record("experiments", {"declared": [{"name": "cold_starts", "title": "Cold"}]})
    probes = pd.DataFrame(
        {
            "workflow": ["wf2", "wf2", "wf2"],
            "kind": ["cold", "warm", "warm"],
            "sent_at": ["t"] * 3,
            "status": [200, 200, 200],
            "ms": [9000.0, 450.0, 470.0],
        }
    )
    inv = _invocations({"resnet": (4000.0, 300.0, 100.0, 1280), "flip": (50.0, 20.0, 10.0, 512)})
    _write_point(run, 1, "cold_starts", {}, {"workflows": ["wf2"]}, inv, probes)
    _write_point(run, 2, "cold_starts", {}, {"workflows": ["wf2"]}, inv, probes)
    _write_point(run, 3, "cold_starts", {}, {}, None, status="failed")
    for k, mb in ((4, 512), (5, 1024)):
        scale = 1024 / mb
        _write_point(
            run,
            k,
            "memory",
            {"memory_mb.*": mb},
            {"memory_mb": {"*": mb}},
            _invocations({"resnet": (4000.0, 300.0, 100.0 * scale, mb), "flip": (50.0, 20.0, 10.0, mb)}),
        )

    points = load_points(run.dir, "cold_starts")
    assert [p.ok for p in points] == [True, True, False]
    table = cold_ex.cold_start_table(points)
    assert table.loc["resnet", "cold_n"] == 4 and table.loc["resnet", "init_ms"] == 4000.0
    assert table.loc["resnet", "warm_duration_ms"] > 100 and table.loc["resnet", "cold_penalty_ms"] > 4000
    e2e = cold_ex.cold_e2e_table(points)
    assert e2e.loc[("wf2", "cold"), "median_ms"] == 9000.0
    assert any("20.0×" in line or "×" in line for line in cold_ex.cold_conclusions(table, e2e))
    assert list(common_ex.points_table(points)["status"]) == ["ok", "ok", "failed"]

    prices = {"prices": {"lambda_x86_64_usd_per_gb_s": 1.66667e-05, "lambda_usd_per_million_requests": 0.2}}
    mem = memory_ex.memory_table(load_points(run.dir, "memory"), prices)
    choices = memory_ex.memory_choices(mem)
    assert choices.loc["resnet", "fastest_mb"] == 1024
    assert choices.loc["flip", "cheapest_mb"] == 512  # same time, half the memory
    at = memory_ex.workflow_at_sizes(
        mem, {"default": {"resnet": 1280, "flip": 512}, "cheapest": choices["cheapest_mb"].to_dict()}
    )
    assert at.loc["default", "wf2_lambda_ms"] > 0
    assert json.loads((run.dir / "manifest.json").read_text())["run_id"] == "run"


def test_time_left_falls_while_a_point_runs_and_scales_with_the_points_so_far(monkeypatch):
    from swlab.run import sweep

    clock = [1000.0]
    monkeypatch.setattr(sweep.time, "monotonic", lambda: clock[0])
    eta = sweep.Eta([60.0, 60.0, 60.0])
    assert eta.left(1) == 180.0
    clock[0] += 20
    assert eta.left(1) == 160.0
    clock[0] += 100  # point 1 took 120 s, twice its estimate
    eta.finished(1)
    assert eta.left(2) == 240.0
    clock[0] += 30
    assert eta.left(2) == 210.0


def test_an_init_past_the_10_s_limit_is_still_a_cold_start(tmp_path):
    """No Init Duration (the init ran again inside the invocation), but the first of its environment."""
    run = _run(tmp_path)
    t0 = pd.Timestamp("2026-01-01T00:00:10Z")
    rows = [
        # environment A: init suppressed (25 s Duration, no Init Duration), then warm
        ("A", 0, False, None, 25000.0),
        ("A", 1, False, None, 200.0),
        # environment B: a reported init, then warm
        ("B", 2, True, 6000.0, 300.0),
        ("B", 3, False, None, 210.0),
    ]
    inv = pd.DataFrame(
        [
            {
                "function": "st-resnet",
                "log_stream": s,
                "start_time": t0 + pd.Timedelta(seconds=i),
                "cold": c,
                "init_duration_ms": init,
                "duration_ms": d,
                "billed_duration_ms": d + init if init else d,
                "memory_size_mb": 1280,
                "status": "success",
                "error_type": None,
            }
            for s, i, c, init, d in rows
        ]
    )
    _write_point(run, 1, "cold_starts", {}, {}, inv)
    table = cold_ex.cold_start_table(load_points(run.dir))
    r = table.loc["resnet"]
    assert (r["cold_n"], r["suppressed_n"], r["warm_n"]) == (2, 1, 2)
    assert r["init_ms"] == 6000.0  # only the reported one
    assert r["cold_total_ms"] == (25000.0 + 6300.0) / 2
    assert r["warm_duration_ms"] == 205.0
    assert any(
        "10 s limit" in line and "resnet 1 of 2" in line for line in cold_ex.cold_conclusions(table, pd.DataFrame())
    )
