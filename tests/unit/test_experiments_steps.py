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
