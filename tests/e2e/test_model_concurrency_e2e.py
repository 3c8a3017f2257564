"""Load safety of Workflow 2 on the local cloud.

Each model function (torch, 0.7-0.95 GB resident per environment) would
otherwise scale out one environment per concurrent request. The local target
deploys them with a reserved concurrency (:data:`swlab.deploy.RESERVED_CONCURRENCY_DEFAULT`),
so a burst of classifications never holds more than that many environments per
model: the excess invocations are throttled (``Lambda.TooManyRequestsException``)
and the state machine's Retry absorbs them, so every execution still succeeds
with all three models. Bounds are counts, not timings.
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
from swlab.deploy import RESERVED_CONCURRENCY_DEFAULT

pytestmark = [pytest.mark.e2e, pytest.mark.models]

MODELS = ("alexnet", "resnet", "mobilenet")
BURST = 8  # concurrent executions: 4x the reserved concurrency of each model


def test_model_functions_are_deployed_with_the_local_default(aws, stack):
    lam = aws("lambda")
    for name, fn in stack["functions"].items():
        have = lam.get_function_concurrency(FunctionName=fn["function_name"]).get("ReservedConcurrentExecutions")
        expected = RESERVED_CONCURRENCY_DEFAULT["local"] if name in MODELS else None
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
        Namespace="AWS/Lambda", MetricName="Throttles", Dimensions=[{"Name": "FunctionName", "Value": function_name}],
        StartTime=since, EndTime=datetime.now(timezone.utc) + timedelta(minutes=1), Period=60,
        Statistics=["Sum"])["Datapoints"]
    return sum(p["Sum"] for p in points)


def test_a_burst_is_throttled_and_retried_instead_of_scaling_out(aws, lab_settings, stack, ingested, warm):
    sfn, ids = aws("stepfunctions", read_timeout=300), list(ingested.values())
    since = datetime.now(timezone.utc) - timedelta(minutes=1)

    def classify(i: int) -> dict:
        return sfn.start_sync_execution(stateMachineArn=stack["state_machine"]["arn"],
                                        input=json.dumps({"image_id": ids[i % len(ids)]}))

    with PeakEnvironments(lab_settings.endpoint_url) as seen, ThreadPoolExecutor(BURST) as pool:
        results = list(pool.map(classify, range(BURST)))
    assert [r["status"] for r in results] == ["SUCCEEDED"] * BURST, [r.get("cause") for r in results]
    for r in results:
        out = json.loads(r["output"])
        assert sorted(out["models_contributing"]) == sorted(MODELS) and not out["models_failed"], out
    limit = RESERVED_CONCURRENCY_DEFAULT["local"]
    for model in MODELS:
        assert 1 <= seen.peak[stack["functions"][model]["function_name"]] <= limit, seen.peak
    deadline = time.monotonic() + 30  # metrics are flushed to CloudWatch in batches
    total = 0.0
    while time.monotonic() < deadline and total == 0:
        total = sum(throttles(aws, stack["functions"][m]["function_name"], since) for m in MODELS)
        time.sleep(0.5)
    assert total > 0, "a burst of 4x the reserved concurrency was never throttled"
