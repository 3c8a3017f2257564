"""Faults on purpose (issue 13): the rules' decisions, the lab's faults parameter, the robustness tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from swlab.analysis.robustness import by_fault_type, outcome_counts, outcomes, terminal_pct
from swlab.bench.faults import count_tracebacks
from swlab.localcloud.faults import FaultInjector, FaultRuleError, request_service
from swlab.run.paths import LabError
from swlab.run.profiles import load_profile, plan_parameters
from swlab.run.robustness_page import robustness_section
from swlab.run.rundir import start_run
from swlab.run.services import ensure_local_cloud
from swlab.settings import load_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def s3_environ(method="GET"):
    auth = "AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x"
    return {"REQUEST_METHOD": method, "HTTP_AUTHORIZATION": auth, "PATH_INFO": "/b/k"}


def test_a_window_counts_from_when_the_rule_was_added():
    clock = Clock()
    faults = FaultInjector([{"type": "s3_error", "start_s": 10, "end_s": 20}], clock=clock)
    assert faults.aws_fault(s3_environ()) is None
    clock.t += 10
    assert faults.aws_fault(s3_environ()).rule.type == "s3_error"
    clock.t += 10
    assert faults.aws_fault(s3_environ()) is None
    assert faults.report()["counts"]["s3_error"] == 1 and faults.report()["total"] == 1


def test_a_rate_is_a_probability_per_call_and_max_count_caps_it():
    faults = FaultInjector([{"type": "s3_throttle", "rate": 0.25}], seed=7)
    hits = sum(faults.aws_fault(s3_environ()) is not None for _ in range(4000))
    assert 850 <= hits <= 1150
    capped = FaultInjector([{"type": "lambda_kill", "max_count": 2, "functions": ["resize"]}])
    assert [capped.lambda_fault(n) is not None for n in ("lab-resize", "lab-flip", "lab-resize", "lab-resize")] == [
        True,
        False,
        True,
        False,
    ]


def test_only_s3_and_dynamodb_requests_are_faulted_by_the_api_rules():
    assert request_service(s3_environ("PUT")) == ("s3", "PUT")
    assert request_service({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem"}) == ("dynamodb", "GetItem")
    faults = FaultInjector([{"type": "dynamodb_error"}, {"type": "s3_error"}])
    sts = s3_environ()
    sts["HTTP_AUTHORIZATION"] = sts["HTTP_AUTHORIZATION"].replace("/s3/", "/sts/")
    assert faults.aws_fault(sts) is None
    assert faults.aws_fault({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}).rule.type == "dynamodb_error"


def test_the_lab_refuses_bad_rules_in_one_line_before_starting_anything(tmp_path):
    run = start_run(tmp_path / "r", root=ROOT)
    local = load_settings(env={}, target="local", region="us-east-1")
    with pytest.raises(LabError, match=r"^faults: fault type 'flood' is not one of") as info:
        ensure_local_cloud(run, local, options={"faults": [{"type": "flood"}]})
    assert "\n" not in str(info.value)
    aws = load_settings(env={}, target="aws", region="us-east-1")
    with pytest.raises(LabError, match="faults are injected by the local cloud only"):
        ensure_local_cloud(run, aws, options={"faults": [{"type": "s3_error"}]})
    with pytest.raises(FaultRuleError):
        FaultInjector([{"type": "s3_error", "rate": -1}])


def test_the_faults_profile_parameters_are_declared_by_the_notebooks():
    profile = load_profile("faults", ROOT)
    types = {r["type"] for r in profile.parameters["faults"]}
    assert types >= {"lambda_kill", "lambda_timeout", "lambda_oom", "lambda_error", "function_down"}
    assert types >= {"s3_throttle", "s3_error", "dynamodb_throttle", "dynamodb_error"}
    FaultInjector(profile.parameters["faults"])  # every rule parses
    plan = plan_parameters(profile.parameters, sorted((ROOT / "notebooks").glob("*.ipynb")))
    assert plan["00_setup.ipynb"]["faults"] == profile.parameters["faults"]


def test_outcomes_per_execution_and_per_fault_type():
    executions = pd.DataFrame(
        {
            "execution_arn": ["a", "b", "c", "d"],
            "status": ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED"],
            "error": [None, None, None, "ImageNotFound"],
        }
    )
    states = pd.DataFrame(
        {
            "execution_arn": ["a", "b", "b", "c", "c", "d"],
            "state": ["Resize", "Resize", "Flip", "MobileNet", "MobileNetFailed", "GetMetadata"],
            "failed_attempts": [0, 1, 1, 3, 0, 0],
            "error": [None, "Runtime.ExitError", "Sandbox.Timedout", "Lambda.ServiceException", None, None],
        }
    )
    table = outcomes(executions, states)
    assert table.set_index("execution_arn")["outcome"].to_dict() == {
        "a": "succeeded",
        "b": "succeeded after retries",
        "c": "degraded to 2 of 3 models",
        "d": "FAILED: ImageNotFound",
    }
    assert outcome_counts(table)["executions"].sum() == 4
    per_type = by_fault_type({"lambda_kill": 2, "function_down": 3}, states).set_index("fault")
    assert per_type.loc["lambda_kill"].tolist() == [2, 1]
    assert per_type.loc["function_down"].tolist() == [3, 1]
    assert per_type.loc["s3_error"].tolist() == [0, 0]
    assert terminal_pct(executions) == 100.0
    assert terminal_pct(executions.assign(status=["RUNNING", "SUCCEEDED", "SUCCEEDED", "FAILED"])) == 75.0


def test_the_robustness_page_shows_faults_against_outcomes(tmp_path):
    run = start_run(tmp_path / "r", root=ROOT)
    assert "No fault was injected in this run" in robustness_section(run)
    run.record("faults", {"total": 4, "counts": {"lambda_kill": 3, "s3_throttle": 1}, "rules": [{}, {}]})
    run.record("collect", {"accounted": ["Workflow 2 (classify): 2 of 2 accounted for"], "lost": 0})
    run.data_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"execution_arn": ["a", "b"], "status": ["SUCCEEDED", "FAILED"], "error": [None, "ModelFailure"]}
    ).to_parquet(run.data_dir / "executions.parquet")
    pd.DataFrame(
        {"execution_arn": ["a"], "state": ["Flip"], "failed_attempts": [1], "error": ["Runtime.ExitError"]}
    ).to_parquet(run.data_dir / "states.parquet")
    page = robustness_section(run)
    assert "4 faults injected by 2 rules." in page
    assert "| lambda_kill | 3 | 1 |" in page and "| s3_throttle | 1 | 0 |" in page
    assert "| succeeded after retries | 1 |" in page and "| FAILED: ModelFailure | 1 |" in page
    assert "100.0 % of the executions are in a terminal state." in page
    assert "2 of 2 accounted for" in page


def test_bench_counts_tracebacks_in_what_users_see():
    tables = {
        "jtl": pd.DataFrame(
            {"responseMessage": ["OK", "Traceback (most recent call last):\n x"], "failureMessage": [None, ""]}
        ),
        "executions": pd.DataFrame({"error": [None, "ModelFailure"]}),
        "items": pd.DataFrame({"error": ["Traceback (most recent call last): y"]}),
    }
    assert count_tracebacks(["ok\nTraceback (most recent call last):\n", "fine"], tables) == 3
    assert count_tracebacks(["one clear line"], {}) == 0


def test_a_model_that_is_down_degrades_the_request_within_api_gateways_29_s():
    """bench-faults: with the service-error retries under the 10-attempt throttling retrier (~56 s), 13 of 20
    /classify answered 504 while a model was down; its service errors now give up after a few seconds."""
    definition = json.loads((ROOT / "asl" / "classify.asl.json").read_text())
    for branch in definition["States"]["Classify"]["Branches"]:
        for name, state in branch["States"].items():
            if state["Type"] != "Task":
                continue
            retrier = next(r for r in state["Retry"] if "Lambda.ServiceException" in r["ErrorEquals"])
            waits = [
                min(
                    retrier["IntervalSeconds"] * retrier.get("BackoffRate", 2.0) ** i,
                    retrier.get("MaxDelaySeconds", 1e9),
                )
                for i in range(retrier["MaxAttempts"])
            ]
            assert sum(waits) <= 10, (name, waits)
