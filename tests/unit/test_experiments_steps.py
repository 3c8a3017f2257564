"""The experiments runner's steps around a point: waiting for a load's executions to end before collecting."""

from datetime import datetime, timedelta, timezone

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
