"""Collection of a run with moto's in-process mock_aws (logs, metrics, Step Functions), and the
run directory round trip."""

import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from swlab.analysis.collect import collect_run, fetch_executions, fetch_log_events, list_stack_objects, stack_bucket
from swlab.analysis.dataset import load_run, save_run
from swlab.loadtest.jtl import parse_jtl
from swlab.settings import STACK_TAG_KEY, load_settings

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
EXPRESS_GROUP = "/aws/vendedlogs/states/swlab-classify-express"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def put_events(logs, group, events, shift_ms):
    """Put fixture events into moto, shifted into the test's window, one stream at a time."""
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    for stream, evs in pd.DataFrame(events).groupby("logStreamName"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        batch = [{"timestamp": int(t) + shift_ms, "message": m} for t, m in zip(evs["timestamp"], evs["message"])]
        logs.put_log_events(
            logGroupName=group, logStreamName=stream, logEvents=sorted(batch, key=lambda e: e["timestamp"])
        )


@pytest.fixture
def cloud():
    with mock_aws():
        s = boto3.Session(region_name="us-east-1")
        clients = {
            svc: s.client(svc)
            for svc in ("lambda", "logs", "cloudwatch", "stepfunctions", "iam", "s3", "sts", "dynamodb")
        }
        yield clients


def deploy(clients, now):
    role = clients["iam"].create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return 1\n")
    for name, arch in (("swlab-grayscale", "x86_64"), ("swlab-flip", "arm64"), ("other-fn", "x86_64")):
        clients["lambda"].create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": buf.getvalue()},
            MemorySize=256,
            Architectures=[arch],
        )
    text = fixture("text_format.json")["events"]
    shift = int(now.timestamp() * 1000) - min(e["timestamp"] for e in text)
    for group in ("/aws/lambda/swlab-grayscale", "/aws/lambda/swlab-flip"):
        put_events(clients["logs"], group, [e for e in text if e["logGroupName"] == group], shift)
    clients["cloudwatch"].put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Throttles",
                "Dimensions": [{"Name": "FunctionName", "Value": "swlab-flip"}],
                "Timestamp": now,
                "Value": 2.0,
                "Unit": "Count",
            }
        ],
    )
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    sfn = clients["stepfunctions"]
    std = sfn.create_state_machine(name="swlab-classify", definition=definition, roleArn=role)
    sfn.start_execution(stateMachineArn=std["stateMachineArn"], name="run-1")
    express = fixture("sfn_express_logs.json")
    put_events(clients["logs"], EXPRESS_GROUP, express["events"], shift)
    sfn.create_state_machine(
        name="swlab-classify-express",
        definition=definition,
        roleArn=role,
        type="EXPRESS",
        loggingConfiguration={
            "level": "ALL",
            "includeExecutionData": True,
            "destinations": [
                {
                    "cloudWatchLogsLogGroup": {
                        "logGroupArn": f"arn:aws:logs:us-east-1:123456789012:log-group:{EXPRESS_GROUP}:*"
                    }
                }
            ],
        },
    )


def test_fetch_log_events_pages_through_everything(cloud):
    now = datetime.now(timezone.utc)
    events = [
        {"logGroupName": "/aws/lambda/swlab-big", "logStreamName": "s", "timestamp": i, "message": f"line {i}"}
        for i in range(12_000)
    ]
    put_events(cloud["logs"], "/aws/lambda/swlab-big", events, int(now.timestamp() * 1000))
    df = fetch_log_events(
        cloud["logs"], "/aws/lambda/swlab-big", now - timedelta(seconds=1), now + timedelta(minutes=1)
    )
    assert len(df) == 12_000 and df["message"].nunique() == 12_000
    missing = fetch_log_events(cloud["logs"], "/aws/lambda/none", now, now)
    assert len(missing) == 0 and "message" in missing.columns


BUCKET = (
    "swlab-images-123456789012-us-east-1"  # swlab.provision.naming.Names("swlab", moto's account, us-east-1).bucket
)


def test_stack_objects_are_those_written_in_the_window(cloud):
    now = datetime.now(timezone.utc)
    assert len(list_stack_objects(cloud["s3"], BUCKET, now, now)) == 0  # no bucket (torn down): nothing
    cloud["s3"].create_bucket(Bucket=BUCKET)
    cloud["s3"].put_object(Bucket=BUCKET, Key="raw/a.jpg", Body=b"12345")
    inside = list_stack_objects(cloud["s3"], BUCKET, now, now + timedelta(minutes=1))
    assert inside[["key", "size"]].to_dict("records") == [{"key": "raw/a.jpg", "size": 5}]
    assert len(list_stack_objects(cloud["s3"], BUCKET, now - timedelta(hours=2), now - timedelta(hours=1))) == 0


def test_the_stack_bucket_is_found_by_name_and_stack_tag(cloud):
    s3 = cloud["s3"]
    assert stack_bucket(s3, "swlab") is None
    for bucket, stack in (
        ("swlab-images-aaa", None),
        ("swlab-images-bbb", "other"),
        ("swlab-images-images-ccc", "swlab-images"),
        (BUCKET, "swlab"),
    ):
        s3.create_bucket(Bucket=bucket)
        if stack:
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": STACK_TAG_KEY, "Value": stack}]})
    assert stack_bucket(s3, "swlab") == BUCKET  # untagged and other stacks' buckets are not ours
    assert stack_bucket(s3, "swlab-images") == "swlab-images-images-ccc"


def test_collect_run_and_reload(cloud, tmp_path):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    deploy(cloud, now)
    settings = load_settings(env={}, target="local", stack="swlab")
    cloud["s3"].create_bucket(Bucket=BUCKET)
    cloud["s3"].put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": STACK_TAG_KEY, "Value": "swlab"}]})
    cloud["s3"].put_object(Bucket=BUCKET, Key="raw/a.jpg", Body=b"x" * 1000)
    cloud["s3"].put_object(Bucket=BUCKET, Key="processed/a/grayscale.png", Body=b"x" * 300)
    cloud["dynamodb"].create_table(
        TableName="swlab-images",
        KeySchema=[{"AttributeName": "image_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "image_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    run = collect_run(
        settings,
        now - timedelta(minutes=1),
        now + timedelta(minutes=5),
        clients=cloud,
        jtl=FIXTURES / "jmeter_results.jtl",
        period_s=60,
        progress=(progress := []).append,
    )
    t = run.tables
    # one progress line per log group: 2 functions, then the Express machine's group (27 events in all)
    assert progress[-1] == "log events collected 27 (3 of 3 log groups)" and len(progress) == 3
    assert t["s3_objects"].set_index("key")["size"].to_dict() == {"raw/a.jpg": 1000, "processed/a/grayscale.png": 300}
    assert sorted(t["functions"]["function"]) == ["swlab-flip", "swlab-grayscale"]  # other stacks excluded
    assert t["functions"].set_index("function").loc["swlab-flip", "architecture"] == "arm64"
    assert len(t["log_events"]) == 20 and len(t["invocations"]) == 5
    assert t["invocations"]["cold"].sum() == 2
    throttles = t["metrics"][(t["metrics"]["metric"] == "Throttles") & (t["metrics"]["function"] == "swlab-flip")]
    assert throttles["value"].sum() == 2.0
    ex = t["executions"].set_index("state_machine")
    assert ex.loc["swlab-classify", "source"] == "history_api"
    assert ex.loc["swlab-classify-express", "source"] == "cloudwatch_logs"
    assert ex.loc["swlab-classify-express", "status"] == "SUCCEEDED"
    assert "ReadMetadata" in set(t["states"]["state"])
    assert len(t["state_machine_log_events"]) == 7  # kept: its ingestion is a cost of the workflow
    assert len(t["jtl"]) == 7 and t["jtl"]["success"].sum() == 5
    # the reconciliation: raw/a.jpg was written in the window and has no item
    assert t["raw_objects"][["key", "size"]].to_dict("records") == [{"key": "raw/a.jpg", "size": 1000}]
    assert ("a", "object without item") in {
        (r.image_id, r.problem) for r in t["reconciliation_exceptions"].itertuples()
    }
    assert set(t["reconciliation"]["workflow"]) == {"Workflow 1 (ingest)", "Workflow 2 (classify)"}
    m = run.manifest
    assert m["target"] == "local" and m["stack"] == "swlab" and m["tool_versions"]["moto"] == "5.2.5"
    assert m["window"]["start"].startswith(str((now - timedelta(minutes=1)).date()))

    save_run(run, tmp_path / "run")
    again = load_run(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["tables"]["invocations"]["rows"] == 5
    for name, df in t.items():
        pd.testing.assert_frame_equal(
            again[name].reset_index(drop=True), df.reset_index(drop=True), check_dtype=False, check_index_type=False
        )


def test_read_jtl_types():
    jtl = parse_jtl(FIXTURES / "jmeter_results.jtl")
    assert str(jtl["timeStamp"].dt.tz) == "UTC" and jtl["success"].dtype == bool
    assert jtl["elapsed"].tolist()[:2] == [1450, 320] and set(jtl["label"]) == {"ingest", "classify"}


class FakeListing:
    """list_executions pages in a given order, counting calls."""

    def __init__(self, starts, page=2):
        self.items = [{"executionArn": f"e{i}", "startDate": t} for i, t in enumerate(starts)]
        self.page, self.calls = page, 0

    def list_executions(self, stateMachineArn, nextToken=0):
        self.calls += 1
        chunk = self.items[nextToken : nextToken + self.page]
        more = nextToken + self.page < len(self.items)
        return {"executions": chunk, **({"nextToken": nextToken + self.page} if more else {})}


def test_fetch_executions_window_in_either_listing_order():

    t = [datetime(2026, 1, 1, 0, 0, s, tzinfo=timezone.utc) for s in range(10)]
    newest_first = FakeListing(t[::-1])
    got = fetch_executions(newest_first, "sm", t[3], t[5])
    assert sorted(e["startDate"] for e in got) == t[3:6] and newest_first.calls == 4  # stopped early
    oldest_first = FakeListing(t)
    got = fetch_executions(oldest_first, "sm", t[3], t[5])
    assert sorted(e["startDate"] for e in got) == t[3:6] and oldest_first.calls == 5
