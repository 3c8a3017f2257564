"""The functions' aws_calls log lines → SDK calls per invocation (plain and JSON log formats)."""

import json

import pandas as pd
import pytest

from swlab.analysis.aws_calls import AWS_CALLS_COLUMNS, aws_calls

pytestmark = pytest.mark.unit

PLAIN_CALLS = (
    '{"ts":1795755000.123,"level":"INFO","message":"aws_calls","calls":{"s3:GetObject":1,'
    '"s3:PutObject":2,"dynamodb:UpdateItem":1},"capacity_units":{"dynamodb:UpdateItem":1.5}}\n'
)


def test_aws_calls_reads_plain_and_json_format_lines_and_skips_the_rest():
    inner = {"ts": 1.0, "level": "INFO", "message": "aws_calls", "calls": {"dynamodb:GetItem": 3}}
    ev = pd.DataFrame(
        {
            "log_group": ["/aws/lambda/swlab-resize"] * 4 + ["/aws/lambda/swlab-ingest"] * 5,
            "log_stream": "s",
            "timestamp": [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000],
            "message": [
                "START RequestId: r1 Version: $LATEST",
                PLAIN_CALLS,
                '{"ts":2,"level":"INFO","message":"resize","image_id":"aws_calls"}',  # mentions it, is not it
                "REPORT RequestId: r1\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\t"
                "Max Memory Used: 4 MB\t",
                # JSON log format: the line as a string in "message", and as an object
                json.dumps(
                    {
                        "timestamp": "2026-11-27T08:00:00Z",
                        "level": "INFO",
                        "requestId": "r2",
                        "message": json.dumps(inner),
                    }
                ),
                json.dumps({"timestamp": "2026-11-27T08:00:01Z", "level": "INFO", "message": inner}),
                '{"message":"aws_calls","calls":{"s3:GetObject":1',  # truncated: malformed
                '{"message":"aws_calls","calls":{"s3:HeadObject":"2","s3:ListObjectsV2":-1,"s3:CopyObject":true,'
                '"nocolon":1,"s3:PutObject":1},"capacity_units":"x"}',  # only s3:PutObject is well formed
                '[1, "aws_calls"]',
            ],
        }
    )
    got = aws_calls(ev)
    assert list(got.columns) == AWS_CALLS_COLUMNS
    rows = sorted(zip(got["function"], got["call"], got["count"], got["capacity_units"].fillna(-1)))
    assert rows == [
        ("swlab-ingest", "dynamodb:GetItem", 3.0, -1),
        ("swlab-ingest", "dynamodb:GetItem", 3.0, -1),
        ("swlab-ingest", "s3:PutObject", 1.0, -1),
        ("swlab-resize", "dynamodb:UpdateItem", 1.0, 1.5),
        ("swlab-resize", "s3:GetObject", 1.0, -1),
        ("swlab-resize", "s3:PutObject", 2.0, -1),
    ]
    first = got[got["call"] == "s3:GetObject"].iloc[0]
    assert first["timestamp"] == pd.Timestamp(2000, unit="ms", tz="UTC")


def test_aws_calls_on_no_lines_is_an_empty_frame_with_the_columns():
    for ev in ([], pd.DataFrame({"function": ["f"], "timestamp": [1], "message": ["END RequestId: r"]})):
        got = aws_calls(ev)
        assert len(got) == 0 and list(got.columns) == AWS_CALLS_COLUMNS


def test_aws_calls_prefilter_keeps_function_column_and_scales():
    n = 200_000
    msgs = pd.Series(["END RequestId: x"] * n)
    msgs.iloc[::1000] = PLAIN_CALLS
    ev = pd.DataFrame({"function": "swlab-flip", "log_stream": "s", "timestamp": range(n), "message": msgs})
    got = aws_calls(ev)
    assert len(got) == 3 * (n // 1000) and set(got["function"]) == {"swlab-flip"}
    assert got.loc[got["call"] == "s3:PutObject", "count"].sum() == 2 * (n // 1000)
