"""Load safety of Workflow 2 on the local cloud.

Each model function (torch, 0.7-0.95 GB resident per environment) would
otherwise scale out one environment per concurrent request. The local target
deploys them with a reserved concurrency (:data:`swlab.provision.options.LOCAL_CLOUD_OPTIONS`),
so a burst of classifications never holds more than that many environments per
model: the excess invocations are throttled (``Lambda.TooManyRequestsException``)
and the state machine's Retry absorbs them, so every execution still succeeds
with all three models. Bounds are counts, not timings.

Whether a natural burst overlaps at the model stage depends on how the
executions spread out in the preprocessing steps before it (cold starts on a
shared 2-core machine), so the test does not rely on it: it holds one model at
reserved concurrency 0 (AWS's "throttle every invocation") until the first
throttle of the burst is recorded, then gives it back its limit. That makes the
throttle → Retry → success path happen in every run.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from e2e_helpers import environments

from swlab.provision.options import LOCAL_CLOUD_OPTIONS

pytestmark = [pytest.mark.e2e, pytest.mark.models]

MODELS = ("alexnet", "resnet", "mobilenet")
BURST = 8  # concurrent executions: 4x the reserved concurrency of each model


def test_model_functions_are_deployed_with_the_local_default(aws, stack):
    lam = aws("lambda")
    for name, fn in stack.functions.items():
        have = lam.get_function_concurrency(FunctionName=fn["function_name"]).get("ReservedConcurrentExecutions")
        expected = LOCAL_CLOUD_OPTIONS["model_reserved_concurrency"] if name in MODELS else None
        assert have == expected == fn["reserved_concurrency"], name


class PeakEnvironments:
    """The largest number of execution environments seen per function while in use (polled)."""

    def __init__(self, endpoint_url: str, period_s: float = 0.1) -> None:
        self.endpoint_url, self.period_s, self.peak = endpoint_url, period_s, Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for fn, n in Counter(e["function"] for e in environments(self.endpoint_url)).items():
                self.peak[fn] = max(self.peak[fn], n)
            self._stop.wait(self.period_s)

    def __enter__(self) -> "PeakEnvironments":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def throttles(aws, function_name: str, since: datetime) -> float:
    points = aws("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Throttles",
        Dimensions=[{"Name": "FunctionName", "Value": function_name}],
        StartTime=since,
        EndTime=datetime.now(timezone.utc) + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(p["Sum"] for p in points)


def test_a_burst_is_throttled_and_retried_instead_of_scaling_out(aws, lab_settings, stack, ingested, warm):
    sfn, lam, ids = aws("stepfunctions", read_timeout=300), aws("lambda"), list(ingested.values())
    limit = LOCAL_CLOUD_OPTIONS["model_reserved_concurrency"]
    held = stack.functions["mobilenet"]["function_name"]
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    before = throttles(aws, held, since)

    def classify(i: int) -> dict:
        return sfn.start_sync_execution(
            stateMachineArn=stack.state_machine["arn"], input=json.dumps({"image_id": ids[i % len(ids)]})
        )

    lam.put_function_concurrency(FunctionName=held, ReservedConcurrentExecutions=0)
    try:
        with PeakEnvironments(lab_settings.endpoint_url) as seen, ThreadPoolExecutor(BURST) as pool:
            pending = [pool.submit(classify, i) for i in range(BURST)]
            deadline = time.monotonic() + 120  # the burst's first execution reaches the models well inside this
            while throttles(aws, held, since) == before and time.monotonic() < deadline:
                time.sleep(0.2)  # metrics are flushed to CloudWatch every 0.2 s
            throttled = throttles(aws, held, since) - before
            lam.put_function_concurrency(FunctionName=held, ReservedConcurrentExecutions=limit)
            results = [f.result() for f in pending]
    finally:
        lam.put_function_concurrency(FunctionName=held, ReservedConcurrentExecutions=limit)
    assert throttled > 0, "an invocation of a model at reserved concurrency 0 was not throttled"
    assert [r["status"] for r in results] == ["SUCCEEDED"] * BURST, [r.get("cause") for r in results]
    for r in results:
        out = json.loads(r["output"])
        assert sorted(out["models_contributing"]) == sorted(MODELS) and not out["models_failed"], out
    for model in MODELS:
        assert 1 <= seen.peak[stack.functions[model]["function_name"]] <= limit, seen.peak
