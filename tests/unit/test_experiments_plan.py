"""The sweep planner: axes × values × repetitions → points with their resolved configuration."""

import pytest

from swlab.run.experiments import estimate_seconds, parse_experiments, plan_points
from swlab.run.paths import LabError
from swlab.run.profiles import load_profile


def _plan(declared, parameters=None, only=None):
    return plan_points(parse_experiments(declared), parameters or {}, only)


def test_axes_times_values_times_repetitions_in_run_order():
    points = _plan(
        [
            {
                "name": "m",
                "repetitions": 2,
                "axes": {"memory_mb.*": [128, 256, 512], "workflow_type": ["EXPRESS", "STANDARD"]},
            }
        ]
    )
    assert len(points) == 3 * 2 * 2
    assert [p.index for p in points] == list(range(1, 13))
    first_rep = points[:6]
    assert [(p.axes["memory_mb.*"], p.axes["workflow_type"]) for p in first_rep] == [
        (128, "EXPRESS"),
        (128, "STANDARD"),
        (256, "EXPRESS"),
        (256, "STANDARD"),
        (512, "EXPRESS"),
        (512, "STANDARD"),
    ]
    assert {p.repetition for p in points[6:]} == {2}
    assert points[3].config["memory_mb"] == {"*": 256} and points[3].config["workflow_type"] == "STANDARD"


def test_resolution_order_defaults_then_profile_then_set_then_axis():
    points = _plan(
        [
            {
                "name": "x",
                "axes": {"rate_per_s": [4]},
                "set": {"duration_s": 7, "rate_per_s": 2, "memory_mb.resnet": 2048},
            }
        ],
        {"rate_per_s": 1, "duration_s": 30, "memory_mb": {"alexnet": 1024}, "stack": "ignored"},
    )
    (p,) = points
    assert p.config["rate_per_s"] == 4  # the axis wins over set, set over the profile
    assert p.config["duration_s"] == 7
    assert p.config["memory_mb"] == {"alexnet": 1024, "resnet": 2048}
    assert p.config["warm_requests"] == 2  # the default
    assert "stack" not in p.config


def test_any_deploy_option_is_an_axis_without_code_for_it():
    points = _plan(
        [
            {
                "name": "v",
                "axes": {
                    "deploy_options.inference": ["torch", "onnx"],
                    "deploy_options.function_overrides.*.architecture": ["arm64"],
                },
            }
        ]
    )
    assert [p.config["deploy_options"] for p in points] == [
        {"inference": "torch", "function_overrides": {"*": {"architecture": "arm64"}}},
        {"inference": "onnx", "function_overrides": {"*": {"architecture": "arm64"}}},
    ]
    assert points[0].deploy_key != points[1].deploy_key


def test_points_are_independent_copies():
    a, b = _plan([{"name": "x", "axes": {"memory_mb.*": [128, 256]}}])
    a.config["memory_mb"]["*"] = 1
    assert b.config["memory_mb"] == {"*": 256}


def test_only_selects_experiments_and_unknown_names_fail():
    declared = [{"name": "a"}, {"name": "b", "repetitions": 3}]
    assert [p.experiment for p in _plan(declared, only=["b"])] == ["b", "b", "b"]
    with pytest.raises(LabError, match="no experiment"):
        _plan(declared, only=["c"])


@pytest.mark.parametrize(
    "declared, message",
    [
        ([{"name": "a", "axes": {"memroy_mb.*": [1]}}], "not a point setting"),
        ([{"name": "a", "axes": {"rate_per_s.x": [1]}}], "not a mapping"),
        ([{"name": "a", "axes": {"rate_per_s": []}}], "non-empty list"),
        ([{"name": "a", "repetitions": 0}], "repetitions"),
        ([{"name": "a", "mode": "warm"}], "mode"),
        ([{"name": "a"}, {"name": "a"}], "unique"),
        ([{"name": "a", "axis": {}}], "unknown keys"),
    ],
)
def test_mistakes_are_one_clear_error(declared, message):
    with pytest.raises(LabError, match=message):
        parse_experiments(declared)


def test_estimate_counts_a_deploy_only_where_the_stack_changes():
    points = _plan(
        [{"name": "a", "repetitions": 2, "set": {"duration_s": 10}}, {"name": "b", "axes": {"memory_mb.*": [128]}}]
    )
    est = estimate_seconds(points)
    assert est[0] > est[1]  # the second repetition reuses the stack
    assert est[2] > est[1]  # b changes memory: a deploy


def test_shipped_profiles_plan_what_the_issue_asks():
    full = load_profile("experiments")
    points = plan_points(full.experiments, full.parameters)
    cold = [p for p in points if p.mode == "cold"]
    assert len(cold) >= 20 and all("wf2" in p.config["workflows"] for p in cold)
    sizes = sorted({p.axes["memory_mb.*"] for p in points if "memory_mb.*" in p.axes})
    assert len(sizes) >= 5 and sizes[0] <= 128 and sizes[-1] == 3008
    assert {p.config["workflow_type"] for p in points if p.experiment == "workflow_type"} == {"EXPRESS", "STANDARD"}
    assert max(p.config["rate_per_s"] for p in points if p.experiment == "load") >= 8
    assert sum(estimate_seconds(points)) <= 27 * 60  # with set-up, analysis and book: about 30 minutes
    provisioned = [p for p in points if p.config["deploy_options"].get("provisioned_concurrency")]
    assert provisioned and all(p.mode == "cold" and p.analysis == "cold_starts" for p in provisioned)
    assert set(provisioned[0].config["deploy_options"]["provisioned_concurrency"]) == {"alexnet", "resnet", "mobilenet"}
    checks = [p.config["memory_choice"] for p in points if p.experiment == "memory" and p.config["memory_choice"]]
    assert checks == ["balanced", "default"]
    ci = load_profile("experiments-ci")
    ci_points = plan_points(ci.experiments, ci.parameters)
    assert sum(estimate_seconds(ci_points)) <= 7.5 * 60  # the provisioned point and the memory checks: ~1:40 more
    assert {p.experiment for p in ci_points} >= {"cold_provisioned", "memory"}
    assert [p.config["memory_choice"] for p in ci_points if p.config["memory_choice"]] == ["balanced", "default"]


def test_a_memory_sweeps_verify_appends_the_chosen_sizes_then_the_defaults():
    points = _plan(
        [
            {
                "name": "m",
                "axes": {"memory_mb.*": [128, 1024]},
                "set": {"workflows": ["wf1", "wf2"], "duration_s": 8},
                "verify": {"workflows": ["wf2"], "warmup_requests": 3},
            }
        ]
    )
    assert [p.axes for p in points] == [
        {"memory_mb.*": 128},
        {"memory_mb.*": 1024},
        {"memory_choice": "balanced"},
        {"memory_choice": "default"},
    ]
    check = points[2].config
    assert check["memory_mb"] == {} and check["workflows"] == ["wf2"] and check["warmup_requests"] == 3
    assert check["duration_s"] == 8  # the experiment's set, then verify's settings
    est = estimate_seconds(points)
    assert est[3] >= est[2] > 0  # each check deploys (its sizes are chosen when it runs)
    with pytest.raises(LabError, match="verify is a mapping of settings, for a sweep with the axis memory_mb"):
        _plan([{"name": "x", "axes": {"rate_per_s": [1]}, "verify": {"duration_s": 4}}])


def test_a_provisioned_cold_point_is_estimated_with_its_init_in_the_deploy_and_a_fast_first_request():
    plain, provisioned = _plan(
        [
            {"name": "a", "mode": "cold", "set": {"workflows": ["wf2"]}},
            {
                "name": "b",
                "mode": "cold",
                "set": {"workflows": ["wf2"], "deploy_options.provisioned_concurrency": {"resnet": 1}},
            },
        ]
    )
    assert provisioned.deploy_key != plain.deploy_key
    a, b = estimate_seconds([plain, provisioned])
    assert b < a + 30  # the first request no longer waits for the models' inits


def test_command_line_overrides_win_over_set_but_not_over_axes():
    exps = parse_experiments([{"name": "x", "axes": {"rate_per_s": [2, 4]}, "set": {"settle_s": 1, "rate_per_s": 9}}])
    points = plan_points(exps, {"settle_s": 5}, overrides={"settle_s": 60, "rate_per_s": 1, "stack": "s"})
    assert [p.config["settle_s"] for p in points] == [60, 60]
    assert [p.config["rate_per_s"] for p in points] == [2, 4]


def test_no_module_imports_another_modules_private_names():
    """The review's leftover: sweep.py imported stages.py's ``_build_book_stage``, ``_safety_stop``, ``_summary``."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "swlab"
    private = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("swlab"):
                private += [f"{path.relative_to(root)}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert private == []


def test_run_experiments_takes_the_run_options_not_a_copy_of_run_lab_signature():
    import inspect

    from swlab.run.options import RunOptions
    from swlab.run.sweep import run_experiments

    params = inspect.signature(run_experiments).parameters
    assert list(params) == ["profile", "overrides", "options"]
    assert params["options"].kind is inspect.Parameter.VAR_KEYWORD
    assert {"run_dir", "only", "build_book", "verbose", "root", "say"} <= set(RunOptions.__annotations__)
