"""Cost model on hand-computed cases (prices written out here, not read from the table)."""

import json

import numpy as np
import pandas as pd
import pytest

from swlab.analysis import cost, prices
from swlab.bench.synthetic import synthetic_run
from swlab.settings import load_settings

pytestmark = pytest.mark.unit


def test_lambda_compute_cost_by_hand():
    # 1,000 ms at 1,024 MB = 1 GB-s; 500 ms at 512 MB = 0.25 GB-s
    assert cost.lambda_gb_s(1000, 1024) == 1.0
    assert cost.lambda_gb_s(500, 512) == 0.25
    assert cost.lambda_compute_cost_usd(1000, 1024, 0.0000166667) == pytest.approx(0.0000166667)
    # 1M invocations of 100 ms at 128 MB on arm64: 12,500 GB-s x $0.0000133334 = $0.1666675
    assert cost.lambda_compute_cost_usd(100 * 1e6, 128, 0.0000133334) == pytest.approx(0.1666675)
    assert cost.per_million_cost_usd(3_000_000, 0.20) == pytest.approx(0.60)


def test_step_functions_standard_and_express_by_hand():
    assert cost.sfn_standard_cost_usd(12 * 1_000_000, 0.025) == pytest.approx(300.0)  # 12 transitions x 1M runs
    # Express: 1,234 ms → 1.3 s billed; 64 MB = 1/16 GB → 0.08125 GB-s
    assert cost.sfn_express_billed_gb_s(1234) == pytest.approx(0.08125)
    assert cost.sfn_express_billed_gb_s(1234, memory_mb=65) == pytest.approx(0.1625)  # two 64-MB chunks
    assert cost.sfn_express_billed_gb_s(100) == pytest.approx(0.00625)  # exact multiple is not rounded up
    # 1M runs of 1,234 ms: $1.00 requests + 81,250 GB-s x $0.0000166667
    assert cost.sfn_express_cost_usd(1e6, 81_250, 1.00, 0.0000166667) == pytest.approx(1.0 + 1.354169375)


def test_storage_and_logs_by_hand():
    assert cost.storage_cost_usd(2.0, 0.023) == pytest.approx(0.046)
    assert cost.logs_ingestion_cost_usd(3 * 1024**3, 0.50) == pytest.approx(1.50)
    assert cost.per_thousand_cost_usd(2_000, 0.005) == pytest.approx(0.01)


def test_init_billed_only_when_not_already_in_billed_duration():
    inv = pd.DataFrame(
        {
            "billed_duration_ms": [51, 13, 352],
            "duration_ms": [50.12, 12.34, 100.5],
            "init_duration_ms": [245.67, np.nan, 251.0],
        }
    )  # third: image, already included
    assert cost.lambda_billed_ms(inv).tolist() == [51 + 246, 13, 352]
    assert cost.lambda_billed_ms(inv, init_billed=False).tolist() == [51, 13, 352]


def tiny_tables():
    inv = pd.DataFrame(
        {
            "function": ["swlab-ingest"] * 2,
            "billed_duration_ms": [1000, 1000],
            "duration_ms": [999.5, 999.5],
            "init_duration_ms": [500.0, np.nan],
            "memory_size_mb": [1024, 1024],
        }
    )
    functions = pd.DataFrame({"function": ["swlab-ingest"], "architecture": ["arm64"]})
    return {"invocations": inv, "functions": functions}


def test_itemized_table_for_a_hand_computed_run():
    prices = {
        "prices": {
            "lambda_arm64_usd_per_gb_s": 0.00001,
            "lambda_usd_per_million_requests": 0.2,
            "apigateway_rest_usd_per_million_requests": 3.5,
            "s3_put_usd_per_1k_requests": 0.005,
            "dynamodb_usd_per_million_write_request_units": 0.625,
        },
        "free_tier_per_month": {"lambda_requests": 1, "lambda_gb_s": 400000},
        "source_kind": "test",
        "as_of": "2026-11-27",
    }
    costs = cost.cost_table(cost.usage_lines(tiny_tables(), "swlab"), prices).set_index("item")
    # 2 runs x 1 s x 1 GB = 2 GB-s invoke; init 500 ms x 1 GB = 0.5 GB-s
    assert costs.loc["duration arm64", "quantity"] == 2.0
    assert costs.loc["duration arm64", "cost_usd"] == pytest.approx(2.0e-5)
    assert costs.loc["init (cold starts) arm64", "cost_usd"] == pytest.approx(0.5e-5)
    assert costs.loc["requests", "cost_usd"] == pytest.approx(2 * 0.2e-6)
    assert costs.loc["requests", "free_tier_value_usd"] == pytest.approx(0.2e-6)  # 1 free request, shown apart
    assert costs.loc["REST requests", "cost_usd"] == pytest.approx(2 * 3.5e-6)
    assert costs.loc["Tier 1 requests (PUT, COPY, POST, LIST)", "cost_usd"] == pytest.approx(2 * 0.005e-3)
    # no aws_calls lines in these tables: S3/DynamoDB by design (REQUEST_PROFILE), Lambda measured
    assert costs.loc["write request units", "basis"] == "design" and costs.loc["requests", "basis"] == "measured"
    assert costs.loc["write request units", "cost_usd"] == pytest.approx(2 * 0.625e-6)
    totals = cost.workflow_totals(cost.cost_table(cost.usage_lines(tiny_tables(), "swlab"), prices))
    per_run = (2.5e-5 + 0.4e-6 + 7e-6 + 1e-5 + 1.25e-6) / 2
    assert totals.iloc[0]["usd_per_run"] == pytest.approx(per_run)
    assert totals.iloc[0]["usd_per_million_runs"] == pytest.approx(per_run * 1e6)


def test_workflow2_shows_standard_and_express():
    run = synthetic_run(n_ingest=3, n_classify=4)
    costs = cost.cost_table(cost.usage_lines(run.tables, "swlab"), prices.load_prices())
    totals = cost.workflow_totals(costs).set_index(["workflow", "step_functions"])
    assert {("classify", "standard"), ("classify", "express")} <= set(totals.index)
    sfn = costs[(costs["workflow"] == "classify") & (costs["service"] == "Step Functions")]
    transitions = sfn.loc[sfn["variant"] == "standard", "quantity"].iloc[0]
    assert transitions == len(run["states"])  # one transition per state entered
    assert costs.attrs["prices_source"] == "offline table"
    assert (costs["cost_usd"] >= 0).all() and costs["cost_usd"].notna().all()


def test_prices_table_is_dated_and_sourced():
    p = prices.load_prices()
    assert p["as_of"] and p["region"] == "us-east-1" and all(u.startswith("https://") for u in p["sources"].values())
    for key in (
        "lambda_x86_64_usd_per_gb_s",
        "lambda_arm64_usd_per_gb_s",
        "sfn_standard_usd_per_1k_transitions",
        "sfn_express_usd_per_gb_s",
        "dynamodb_usd_per_million_write_request_units",
        "apigateway_rest_usd_per_million_requests",
        "cloudwatch_logs_ingestion_usd_per_gb",
    ):
        assert p["prices"][key] > 0


class FakePricing:
    """Answers get_products like the Price List API (one product per service, first tier first)."""

    def __init__(self):
        self.calls = []

    def get_products(self, **kwargs):
        self.calls.append(kwargs)
        if kwargs["ServiceCode"] != "AWSLambda":
            return {"PriceList": []}
        product = {
            "product": {"attributes": {"usagetype": "USE1-Lambda-GB-Second-ARM"}},
            "terms": {
                "OnDemand": {
                    "X": {
                        "priceDimensions": {
                            "b": {"beginRange": "7500000000", "pricePerUnit": {"USD": "0.0000094"}},
                            "a": {"beginRange": "0", "pricePerUnit": {"USD": "0.0000133000"}},
                        }
                    }
                }
            },
        }
        free = {
            "product": {"attributes": {"usagetype": "Global-Lambda-GB-Second-ARM"}},
            "terms": {
                "OnDemand": {
                    "F": {"priceDimensions": {"f": {"beginRange": "0", "pricePerUnit": {"USD": "0.0000000000"}}}}
                }
            },
        }
        return {"PriceList": [json.dumps(free), json.dumps(product)]}


def test_a_run_on_the_local_cloud_is_costed_with_the_offline_table_even_when_the_api_is_asked_for():
    local = load_settings(env={}, target="local")
    assert prices.prices_for(local, use_price_list_api=True) == prices.load_prices()


def test_refresh_prices_takes_first_tier_and_says_so():
    fake = FakePricing()
    p = prices.refresh_prices(fake)
    assert p["prices"]["lambda_arm64_usd_per_gb_s"] == pytest.approx(0.0000133)
    assert p["source_kind"] == "AWS Price List API" and p["refreshed_keys"] == ["lambda_arm64_usd_per_gb_s"]
    assert p["prices"]["lambda_x86_64_usd_per_gb_s"] == prices.load_prices()["prices"]["lambda_x86_64_usd_per_gb_s"]
    assert all(c["Filters"][0]["Value"] == "us-east-1" for c in fake.calls)


def test_init_line_is_the_same_whether_or_not_report_already_billed_it():
    prices = {"prices": {"lambda_x86_64_usd_per_gb_s": 1.0, "lambda_usd_per_million_requests": 0.0}}
    not_included = {
        "invocations": pd.DataFrame(
            {
                "function": ["swlab-f"],
                "billed_duration_ms": [100],
                "duration_ms": [99.2],
                "init_duration_ms": [400.2],
                "memory_size_mb": [1024],
            }
        )
    }
    included = {"invocations": not_included["invocations"].assign(billed_duration_ms=500)}  # local cloud, images
    for tables in (not_included, included):
        items = cost.cost_table(cost.usage_lines(tables, "swlab", profile={}), prices).set_index("item")
        assert items.loc["init (cold starts) x86_64", "quantity"] == pytest.approx(0.401)
        assert items.loc["duration x86_64", "quantity"] == pytest.approx(0.1 if tables is not_included else 0.099)


def test_profile_lines_storage_by_hand():
    prices = {
        "prices": {
            "s3_standard_usd_per_gb_month": 0.023,
            "lambda_usd_per_million_requests": 0.2,
            "lambda_x86_64_usd_per_gb_s": 0.0000166667,
        }
    }
    tables = {
        "invocations": pd.DataFrame(
            {
                "function": ["swlab-ingest"] * 4,
                "billed_duration_ms": [10] * 4,
                "duration_ms": [9.5] * 4,
                "init_duration_ms": [np.nan] * 4,
                "memory_size_mb": [128] * 4,
            }
        )
    }
    items = cost.cost_table(
        cost.usage_lines(tables, "swlab", profile={"ingest": {"s3_storage_gb_month": 0.5}}), prices
    ).set_index("item")
    assert items.loc["storage (kept one month)", "quantity"] == 2.0  # 4 runs x 0.5 GB-month
    assert items.loc["storage (kept one month)", "cost_usd"] == pytest.approx(0.046)


def test_logs_ingestion_counts_function_and_state_machine_log_bytes():
    tables = {
        "invocations": pd.DataFrame(
            {
                "function": ["swlab-a"],
                "billed_duration_ms": [1],
                "duration_ms": [0.5],
                "init_duration_ms": [np.nan],
                "memory_size_mb": [128],
            }
        ),
        "executions": pd.DataFrame({"execution_arn": ["x"], "state_machine": ["swlab-wf"], "duration_ms": [100.0]}),
        "states": pd.DataFrame({"state_machine": ["swlab-wf"], "resource": ["swlab-a"]}),
        "log_events": pd.DataFrame({"function": ["swlab-a", "swlab-b"], "message": ["é" * 10, "x" * 1000]}),
        "state_machine_log_events": pd.DataFrame({"state_machine": ["swlab-wf"], "message": ["y" * 74]}),
    }
    usage = cost.usage_lines(tables, "swlab", profile={}).set_index(["workflow", "item"])
    # swlab-a: 20 UTF-8 bytes + 26; state machine: 74 + 26 → 146 bytes (swlab-b belongs to another workflow)
    assert usage.loc[("wf", "ingestion"), "quantity"] * cost.BYTES_PER_GB == pytest.approx(146)


def test_standard_transitions_count_retries():
    states = pd.DataFrame(
        {
            "state_machine": ["swlab-wf"] * 3,
            "resource": [None] * 3,
            "status": ["succeeded", "succeeded", "failed"],
            "failed_attempts": [0, 2, 1],
        }
    )
    tables = {
        "invocations": pd.DataFrame(
            columns=["function", "billed_duration_ms", "duration_ms", "init_duration_ms", "memory_size_mb"]
        ),
        "executions": pd.DataFrame({"execution_arn": ["x"], "state_machine": ["swlab-wf"], "duration_ms": [100.0]}),
        "states": states,
    }
    usage = cost.usage_lines(tables, "swlab", profile={}).set_index("item")
    assert usage.loc["Standard state transitions", "quantity"] == 3 + 2  # 2 retries; the last failure no retry


# ---- S3/DynamoDB requests measured from the functions' aws_calls lines ----


def calls_line(calls: dict, units: dict | None = None) -> str:
    rec = {"ts": 1795755000.1, "level": "INFO", "message": "aws_calls", "calls": calls}
    return json.dumps(rec if units is None else {**rec, "capacity_units": units})


def lambda_inv(functions: list[str]) -> pd.DataFrame:
    n = len(functions)
    return pd.DataFrame(
        {
            "function": functions,
            "billed_duration_ms": [10] * n,
            "duration_ms": [9.5] * n,
            "init_duration_ms": [np.nan] * n,
            "memory_size_mb": [128] * n,
        }
    )


def log_events(function: str, messages: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "log_group": f"/aws/lambda/{function}",
            "log_stream": "s",
            "function": function,
            "timestamp": range(len(messages)),
            "message": messages,
        }
    )


INGEST_PROFILE = {
    "ingest": {"apigateway_requests": 1, "s3_put_requests": 7, "dynamodb_write_units": 7, "s3_storage_gb_month": 0.5}
}


def ingest_tables(messages: list[str]) -> dict:
    return {"invocations": lambda_inv(["swlab-ingest"] * 2), "log_events": log_events("swlab-ingest", messages)}


def test_request_kind_follows_s3_and_dynamodb_billing():
    kinds = {
        c: cost.request_kind(c)
        for c in (
            "s3:PutObject",
            "s3:CopyObject",
            "s3:ListObjectsV2",
            "s3:CreateMultipartUpload",
            "s3:UploadPart",
            "s3:CompleteMultipartUpload",
            "s3:GetObject",
            "s3:HeadObject",
            "s3:DeleteObject",
            "s3:DeleteObjects",
            "s3:AbortMultipartUpload",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:DescribeTable",
            "sts:GetCallerIdentity",
        )
    }
    tier1 = [
        "s3:PutObject",
        "s3:CopyObject",
        "s3:ListObjectsV2",
        "s3:CreateMultipartUpload",
        "s3:UploadPart",
        "s3:CompleteMultipartUpload",
    ]
    assert [c for c, k in kinds.items() if k == "s3_put_requests"] == tier1
    assert [c for c, k in kinds.items() if k == "s3_get_requests"] == ["s3:GetObject", "s3:HeadObject"]
    assert [c for c, k in kinds.items() if k == "dynamodb_write_units"] == [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
    ]
    assert [c for c, k in kinds.items() if k == "dynamodb_read_units"] == ["dynamodb:GetItem", "dynamodb:Query"]
    assert [c for c, k in kinds.items() if k is None] == [
        "s3:DeleteObject",
        "s3:DeleteObjects",
        "s3:AbortMultipartUpload",
        "dynamodb:DescribeTable",
        "sts:GetCallerIdentity",
    ]


def test_measured_s3_and_dynamodb_lines_by_hand():
    tables = ingest_tables(
        [
            "START RequestId: r1 Version: $LATEST",
            calls_line({"s3:PutObject": 1, "s3:HeadObject": 1, "dynamodb:PutItem": 1}, {"dynamodb:PutItem": 2.0}),
            calls_line(
                {
                    "s3:PutObject": 1,
                    "s3:ListObjectsV2": 1,
                    "s3:DeleteObject": 4,
                    "dynamodb:PutItem": 1,
                    "dynamodb:GetItem": 2,
                }
            ),  # no capacity reported: one unit per call
        ]
    )
    usage = cost.usage_lines(tables, "swlab", profile=INGEST_PROFILE).set_index("item")
    assert usage.loc["Tier 1 requests (PUT, COPY, POST, LIST)", "quantity"] == 3  # 2 PUT + 1 LIST (DELETE free)
    assert usage.loc["Tier 2 requests (GET and all other)", "quantity"] == 1  # HEAD
    assert usage.loc["write request units", "quantity"] == 2.0 + 1  # reported 2.0; then 1 call x 1 WRU
    assert usage.loc["read request units", "quantity"] == 2  # 2 calls x 1 RRU
    basis = usage["basis"].to_dict()
    assert {
        basis[i]
        for i in (
            "Tier 1 requests (PUT, COPY, POST, LIST)",
            "Tier 2 requests (GET and all other)",
            "write request units",
            "read request units",
            "requests",
            "ingestion",
        )
    } == {"measured"}
    assert basis["REST requests"] == "design" and basis["storage (kept one month)"] == "design"
    assert usage.loc["storage (kept one month)", "quantity"] == 2 * 0.5  # no s3_objects table: profile x 2 runs
    assert (usage["service"] == "S3").sum() == 3 and (usage["service"] == "DynamoDB").sum() == 2  # no design dupes
    prices = {"prices": {"s3_put_usd_per_1k_requests": 0.005, "s3_get_usd_per_1k_requests": 0.0004}}
    costs = cost.cost_table(usage.reset_index(), prices).set_index("item")
    assert costs.loc["Tier 1 requests (PUT, COPY, POST, LIST)", "cost_usd"] == pytest.approx(3 * 0.005e-3)
    assert costs.loc["Tier 2 requests (GET and all other)", "basis"] == "measured"
    assert "basis" in cost.per_million_runs(costs.reset_index().assign(runs=2)).columns


def test_s3_storage_is_what_the_run_stored_under_its_workflow_prefix():
    objects = pd.DataFrame(
        {
            "key": ["raw/a.jpg", "raw/b.jpg", "processed/a/grayscale.png", "_deploy/x.zip"],
            "size": [3 * 2**20, 1 * 2**20, 5 * 2**20, 7 * 2**20],
        }
    )
    tables = {**ingest_tables([calls_line({"s3:PutObject": 1})]), "s3_objects": objects}
    usage = cost.usage_lines(tables, "swlab", profile=INGEST_PROFILE)
    storage = usage[usage["item"] == "storage (kept one month)"].set_index("service")
    assert storage.loc["S3", "quantity"] == pytest.approx(4 / 1024)  # raw/ only: 4 MB, whatever the profile says
    assert storage.loc["S3", "basis"] == "measured" and (usage["service"] == "S3").sum() == 2  # no design line
    empty = cost.usage_lines({**tables, "s3_objects": objects.iloc[:0]}, "swlab", profile=INGEST_PROFILE)
    assert empty.loc[empty["item"] == "storage (kept one month)", "quantity"].tolist() == [0.0]  # stored nothing
    older = cost.usage_lines(ingest_tables([]), "swlab", profile=INGEST_PROFILE)  # no s3_objects table: design
    assert older.loc[older["item"] == "storage (kept one month)", "basis"].tolist() == ["design"]


def test_no_aws_calls_lines_falls_back_to_the_design_profile():
    tables = ingest_tables(["START RequestId: r1 Version: $LATEST", '{"message":"ingest","image_id":"a"}'])
    usage = cost.usage_lines(tables, "swlab", profile=INGEST_PROFILE).set_index("item")
    assert usage.loc["Tier 1 requests (PUT, COPY, POST, LIST)", "quantity"] == 7 * 2  # profile x 2 runs
    assert usage.loc["write request units", "quantity"] == 7 * 2
    assert usage.loc["write request units", "basis"] == "design"
    assert usage.loc["Tier 1 requests (PUT, COPY, POST, LIST)", "basis"] == "design"
    assert usage.loc["requests", "basis"] == "measured"


def classify_tables(messages: list[str]) -> dict:
    """Two executions; GetMetadata (dynamodb:getItem) retried once in the first; one Lambda state."""
    sm = "swlab-classify"
    states = pd.DataFrame(
        {
            "state_machine": sm,
            "execution_arn": ["e1", "e1", "e2", "e2"],
            "state": ["GetMetadata", "Update", "GetMetadata", "Update"],
            "resource": ["dynamodb:getItem", "swlab-update", "dynamodb:getItem", "swlab-update"],
            "status": ["succeeded", "succeeded", "failed", "succeeded"],
            "failed_attempts": [1, 0, 3, 0],
        }
    )
    return {
        "invocations": lambda_inv(["swlab-update"] * 2),
        "states": states,
        "executions": pd.DataFrame({"execution_arn": ["e1", "e2"], "state_machine": sm, "duration_ms": [100.0, 200.0]}),
        "log_events": log_events("swlab-update", messages),
    }


def test_state_machine_dynamodb_states_count_every_attempt():
    tables = classify_tables(
        [
            calls_line(
                {"dynamodb:UpdateItem": 1, "dynamodb:GetItem": 1}, {"dynamodb:UpdateItem": 1.0, "dynamodb:GetItem": 0.5}
            )
        ]
        * 2
    )
    usage = cost.usage_lines(tables, "swlab", profile={}).set_index("item")
    # GetMetadata: e1 1 visit + 1 retry = 2 attempts; e2 3 failed attempts, the last not retried = 3
    assert cost.sfn_dynamodb_units(tables["states"], "swlab-classify") == {"dynamodb_read_units": 5.0}
    assert usage.loc["read request units", "quantity"] == 5 + 2 * 0.5  # SFN 5 RRU + the function's reported 0.5 x 2
    assert usage.loc["write request units", "quantity"] == 2 * 1.0
    assert usage.loc["read request units", "basis"] == "measured"
    assert usage.loc["Standard state transitions", "quantity"] == 4 + 1 + 2  # 4 visits + retries (1, 2)


def test_state_machine_fallback_uses_the_profile_only():
    tables = classify_tables(["no aws calls here"])
    usage = cost.usage_lines(tables, "swlab", profile={"classify": {"dynamodb_read_units": 1}}).set_index("item")
    assert usage.loc["read request units", "quantity"] == 2  # profile x 2 runs; no SFN units added on top
    assert usage.loc["read request units", "basis"] == "design"
    assert "write request units" not in usage.index
