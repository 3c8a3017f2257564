"""The experiments runner's steps around a point: waiting for a load's executions to end before collecting."""

from datetime import datetime, timedelta, timezone

import pandas as pd
from botocore.exceptions import ClientError

from swlab.run.measure import wait_executions_done

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


class FakeSfn:
    """Executions that end one per poll (oldest first); one started before the window, still running."""

    def __init__(self, running: int, ends_per_poll: int = 1) -> None:
        self.polls = 0
        self.running, self.ends_per_poll = running, ends_per_poll

    def list_executions(self, stateMachineArn, **kw):
        self.polls += 1
        done = min(self.running, (self.polls - 1) * self.ends_per_poll)
        rows = [
            {
                "executionArn": f"arn:ex:{i}",
                "startDate": T0 + timedelta(seconds=i),
                "status": "SUCCEEDED" if i < done else "RUNNING",
            }
            for i in range(self.running)
        ]
        old = {"executionArn": "arn:ex:old", "startDate": T0 - timedelta(hours=1), "status": "RUNNING"}
        return {"executions": [*reversed(rows), old]}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_waits_until_every_execution_started_in_the_window_has_ended_with_progress():
    sfn, clock, said = FakeSfn(running=4), Clock(), []
    out = wait_executions_done(sfn, "arn:sm", T0, 60, said.append, poll_s=2, every_s=3, clock=clock, sleep=clock.sleep)
    assert out.listed and out.started == 4 and out.running == []  # the execution older than the window is ignored
    assert sfn.polls == 5 and out.waited_s == 8
    assert said and said[0] == "4 of 4 executions still running (0/60 s waited)"
    assert out.as_dict()["running"] == 0


def test_the_wait_is_bounded_and_returns_those_still_running():
    sfn, clock = FakeSfn(running=10), Clock()
    out = wait_executions_done(sfn, "arn:sm", T0, 5, poll_s=1, clock=clock, sleep=clock.sleep)
    assert out.waited_s == 5 and len(out.running) == 5
    assert out.as_dict()["running_arns"] == [f"arn:ex:{i}" for i in range(9, 4, -1)]


def test_an_unlistable_state_machine_is_not_waited_for():
    class Express:
        def list_executions(self, **kw):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "Express"}}, "ListExecutions")

    out = wait_executions_done(Express(), "arn:sm", T0, 60)
    assert not out.listed and out.running == [] and "Express" in (out.error or "")


# ---- issue 12: the load test's mode in its record and on the book's pages


def _load_test(tmp_path, monkeypatch, workflow, mode):
    from types import SimpleNamespace

    from swlab.loadtest.plans import ApiEndpoint, LoadProfile
    from swlab.run import measure
    from swlab.run.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.dir.mkdir(parents=True)
    fake = SimpleNamespace(jtl=tmp_path / "r.jtl", warnings=[], samples_planned=2)
    monkeypatch.setattr(measure, "run_workflow", lambda *a, **k: fake)
    monkeypatch.setattr(measure, "parse_jtl", lambda path: pd.DataFrame())
    monkeypatch.setattr(measure, "summarize_jtl", lambda df, n: {"samples": n, "p50_ms": 10.0})
    profile = LoadProfile(rate_per_s=1, duration_s=2, mode=mode, poll_ms=250)
    test = measure.LoadTest(run, workflow, profile, ApiEndpoint("127.0.0.1", 1, base_path="/v1"), 2)
    test.execute(progress=lambda p: None)
    return run, test


def test_the_load_test_record_holds_workflow_2s_mode(tmp_path, monkeypatch):
    from swlab.run.records import LoadTestRecord

    run, test = _load_test(tmp_path, monkeypatch, "wf2", "async")
    rec = run.load(LoadTestRecord, LoadTestRecord.key_of("wf2"))
    assert (rec.mode, rec.poll_ms) == ("async", 250)
    assert "Mode **async**" in test.mode_text() and "/v1/classifications" in test.mode_text()
    run, test = _load_test(tmp_path / "b", monkeypatch, "wf1", "async")  # Workflow 1 has one mode
    rec = run.load(LoadTestRecord, LoadTestRecord.key_of("wf1"))
    assert (rec.mode, rec.poll_ms) == ("sync", None)


def test_the_run_page_lists_the_load_tests_with_their_mode():
    from swlab.run import book

    manifest = {
        "load_wf1": {"workflow": "wf1", "mode": "sync", "summary": {"samples": 5, "p50_ms": 20}},
        "load_wf2": {"workflow": "wf2", "mode": "async", "poll_ms": 500, "summary": {"samples": 5, "p50_ms": 900}},
    }
    page = book.run_page(manifest, [])
    assert "## Load tests" in page
    assert "| wf2 | async (poll 500 ms) | 5 |" in page and "| wf1 | sync | 5 |" in page


# ---- issue 11: provisioned concurrency as a deploy option (the cold-start experiment's comparison)


class FakeLambda:
    """Versions, the alias and provisioned concurrency configurations, as the Lambda API answers them."""

    def __init__(self, status_sequence=("IN_PROGRESS", "READY")) -> None:
        self.calls: list[str] = []
        self.versions, self.alias, self.config = 0, None, None
        self.statuses = list(status_sequence)

    def _missing(self, code):
        return ClientError({"Error": {"Code": code, "Message": "no"}}, "op")

    def get_alias(self, FunctionName, Name):
        self.calls.append("get_alias")
        if self.alias is None:
            raise self._missing("ResourceNotFoundException")
        return {"FunctionVersion": self.alias}

    def get_provisioned_concurrency_config(self, FunctionName, Qualifier):
        self.calls.append("get_pc")
        if self.config is None:
            raise self._missing("ProvisionedConcurrencyConfigNotFoundException")
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"RequestedProvisionedConcurrentExecutions": self.config, "Status": status}

    def publish_version(self, FunctionName):
        self.calls.append("publish")
        self.versions = self.versions or 1
        return {"Version": str(self.versions)}

    def create_alias(self, FunctionName, Name, FunctionVersion):
        self.calls.append("create_alias")
        self.alias = FunctionVersion

    def update_alias(self, FunctionName, Name, FunctionVersion):
        self.calls.append("update_alias")
        self.alias = FunctionVersion

    def put_provisioned_concurrency_config(self, FunctionName, Qualifier, ProvisionedConcurrentExecutions):
        assert Qualifier == "live"
        self.calls.append(f"put_pc {ProvisionedConcurrentExecutions}")
        self.config = ProvisionedConcurrentExecutions

    def delete_provisioned_concurrency_config(self, FunctionName, Qualifier):
        self.calls.append("delete_pc")
        self.config = None


def test_provisioned_concurrency_publishes_a_version_aliases_it_and_the_state_machine_invokes_the_alias():
    from swlab.provision.changes import ChangeReport
    from swlab.provision.naming import Names
    from swlab.provision.provisioned import ensure_provisioned, wait_ready
    from swlab.provision.state_machine import state_machine_values

    lam, report, arn = FakeLambda(), ChangeReport(), "arn:aws:lambda:us-east-1:1:function:s-resnet"
    out = ensure_provisioned(lam, "s-resnet", arn, 1, report)
    assert out == {"invoke_arn": arn + ":live", "provisioned_concurrency": 1, "version": "1"}
    assert lam.calls == ["get_alias", "publish", "create_alias", "put_pc 1"]
    lam.calls.clear()
    assert ensure_provisioned(lam, "s-resnet", arn, 1, report)["invoke_arn"] == arn + ":live"
    assert "put_pc 1" not in lam.calls  # unchanged: nothing put again
    clock, lam.statuses = Clock(), ["IN_PROGRESS", "READY"]
    wait_ready(lam, ["s-resnet"], clock=clock, sleep=clock.sleep)
    assert clock.t > 0  # waited for IN_PROGRESS -> READY
    names = Names(stack="s", region="us-east-1", account_id="1")
    functions = {"resnet": {"arn": arn, **out}, "alexnet": {"arn": arn.replace("resnet", "alexnet")}}
    values = state_machine_values(names, functions)
    assert values["ResnetArn"] == arn + ":live" and values["AlexnetArn"].endswith(":function:s-alexnet")
    lam.calls.clear()
    assert ensure_provisioned(lam, "s-resnet", arn, None, report)["invoke_arn"] == arn  # the option dropped
    assert lam.calls == ["get_alias", "get_pc", "delete_pc"]


def test_a_function_without_the_alias_makes_no_provisioned_concurrency_call():
    from swlab.provision.changes import ChangeReport
    from swlab.provision.provisioned import ensure_provisioned

    lam = FakeLambda()
    ensure_provisioned(lam, "f", "arn:f", None, ChangeReport())
    assert lam.calls == ["get_alias"]  # moto (the AWS rehearsal) has no provisioned concurrency API


def test_a_failed_or_slow_provisioned_concurrency_is_one_clear_error():
    import pytest

    from swlab.provision.options import DeployOptions
    from swlab.provision.provisioned import ProvisionedConcurrencyError, wait_ready

    lam = FakeLambda(status_sequence=("FAILED",))
    lam.config = 1
    with pytest.raises(ProvisionedConcurrencyError, match="s-resnet:live failed"):
        wait_ready(lam, ["s-resnet"])
    lam, clock = FakeLambda(status_sequence=("IN_PROGRESS",)), Clock()
    lam.config = 1
    with pytest.raises(ProvisionedConcurrencyError, match="not READY after 30 s"):
        wait_ready(lam, ["s-resnet"], timeout_s=30, clock=clock, sleep=clock.sleep)
    with pytest.raises(ValueError, match="provisioned concurrency of 'resnet'"):
        DeployOptions(provisioned_concurrency={"resnet": 0})


# ---- issue 11: the memory sweep's check points deploy the sizes the sweep chose


def test_the_check_points_sizes_are_the_sweeps_balanced_choice_or_the_defaults(tmp_path):
    import pytest

    from swlab.run.paths import LabError
    from swlab.run.sweep import chosen_memory
    from tests.unit.test_sweep_points import _invocations, _run, _write_point

    run = _run(tmp_path)
    with pytest.raises(LabError, match="no balanced size to deploy"):
        chosen_memory(run, "memory", "balanced", {})
    # resnet: 4x faster at 2048 than at 512 (worth it); flip: as fast at 128 as at 2048 (not worth it)
    for k, mb, resnet_ms, flip_ms in ((1, 128, 4000.0, 10.0), (2, 512, 1000.0, 10.0), (3, 2048, 250.0, 10.0)):
        inv = _invocations({"resnet": (4000.0, 300.0, resnet_ms, mb), "flip": (50.0, 20.0, flip_ms, mb)})
        _write_point(run, k, "memory", {"memory_mb.*": mb}, {"memory_mb": {"*": mb}}, inv)
    check = {"memory_choice": "balanced", "memory_mb": {"resnet": 64}}  # an earlier check is not a sweep point
    _write_point(run, 4, "memory", {"memory_choice": "balanced"}, check, _invocations({"resnet": (1, 1, 1, 64)}))
    assert chosen_memory(run, "memory", "balanced", {}) == {"flip": 128, "resnet": 2048}
    assert chosen_memory(run, "memory", "fastest", {})["resnet"] == 2048
    assert chosen_memory(run, "memory", "default", {"*": 1024}) == {"*": 1024}
    with pytest.raises(LabError, match="memory_choice must be one of"):
        chosen_memory(run, "memory", "largest", {})
