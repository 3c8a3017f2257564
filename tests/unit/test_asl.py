"""asl/classify.asl.json and swlab.provision.asl: placeholders, structure, and real runs on moto 5.2.5's interpreter.

The runs use moto in-process (``mock_aws`` with execute_state_machine on): the
DynamoDB getItem integration hits moto's DynamoDB, and Lambda invocations are
answered by the lab's own function code, called in-process through a stand-in
for moto's ``_invoke_lambda_function`` (moto cannot run Lambda code without
Docker; the local cloud's data plane does that in the functional/e2e tiers).
The stand-in is applied with pytest's monkeypatch for these tests only.
"""

from __future__ import annotations

import copy
import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from lambda_modules import REGION, FakeClassifier, add_paths, make_stack
from moto import mock_aws

from swlab.provision import asl
from swlab.samples import list_samples

pytestmark = pytest.mark.unit
FUNCTIONS = [
    "ingest",
    "fetch_image",
    "grayscale",
    "flip",
    "rotate",
    "resize",
    "alexnet",
    "resnet",
    "mobilenet",
    "aggregate",
    "update",
    "mark_failed",
]
ACCOUNT = "123456789012"
ARNS = {f: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:swlab-{f}" for f in FUNCTIONS}
SUBS = asl.classify_substitutions(ARNS, "swlab-test-images")


def definition():
    return asl.load_definition(asl.CLASSIFY, SUBS)


# --- placeholders -----------------------------------------------------------


def test_file_is_valid_json_with_placeholders_only_in_strings():
    raw = json.loads(asl.CLASSIFY.read_text())
    assert asl.placeholders(raw) == set(SUBS)
    assert not [k for k in asl._keys(raw) if "${" in k]


def test_load_substitutes_every_placeholder():
    text = asl.render(definition())
    assert "${" not in text and ARNS["fetch_image"] in text and "swlab-test-images" in text
    assert ARNS["ingest"] not in text  # ingest is not part of Workflow 2


def test_load_refuses_missing_unused_empty_and_leftover_values():
    missing = {k: v for k, v in SUBS.items() if k != "ResnetArn"}
    with pytest.raises(asl.AslError, match=r"no value for placeholder \$\{ResnetArn\}"):
        asl.load_definition(asl.CLASSIFY, missing)
    with pytest.raises(asl.AslError, match="'ResNetArn' matches no placeholder"):
        asl.load_definition(asl.CLASSIFY, {**SUBS, "ResNetArn": "x"})
    with pytest.raises(asl.AslError, match="not a non-empty string"):
        asl.load_definition(asl.CLASSIFY, {**SUBS, "TableName": ""})
    with pytest.raises(asl.AslError, match="left-over"):
        asl.load_definition(asl.CLASSIFY, {**SUBS, "TableName": "${Table}"})
    with pytest.raises(asl.AslError):
        asl.load_definition(asl.CLASSIFY, {})


def test_load_refuses_invalid_json_and_placeholders_in_keys(tmp_path):
    bad = tmp_path / "bad.asl.json"
    bad.write_text('{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": ${Arn}}}}')
    with pytest.raises(asl.AslError, match="not valid JSON at rest"):
        asl.load_definition(bad, {"Arn": "x"})
    bad.write_text(json.dumps({"StartAt": "A", "States": {"${Name}": {"Type": "Succeed"}}}))
    with pytest.raises(asl.AslError, match="placeholder in a key"):
        asl.load_definition(bad, {})


# --- structure --------------------------------------------------------------


def test_classify_definition_is_structurally_valid():
    d = definition()
    assert asl.validate(d) == []
    tasks = [s for s in d["States"].values() if s["Type"] == "Task"]
    tasks += [s for b in d["States"]["Classify"]["Branches"] for s in b["States"].values() if s["Type"] == "Task"]
    assert len(tasks) == 12  # GetMetadata, 5 steps, 3 models, Aggregate, Update, MarkFailed
    assert all(t["TimeoutSeconds"] > 0 and t["Retry"] for t in tasks)


def test_every_unrecoverable_error_goes_to_mark_failed():
    states = definition()["States"]
    for name in (
        "GetMetadata",
        "FetchImage",
        "Grayscale",
        "Flip",
        "Rotate",
        "Resize",
        "Classify",
        "Aggregate",
        "Update",
    ):
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}
        ], name
    assert states["MarkFailed"]["Next"] == "ClassificationFailed" and states["ClassificationFailed"]["Type"] == "Fail"
    assert states["ImageNotFound"] == {**states["ImageNotFound"], "Type": "Fail", "Error": "ImageNotFound"}


def mutate(change):
    d = copy.deepcopy(definition())
    change(d)
    return asl.validate(d)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d.update(StartAt="Nope"), "StartAt -> 'Nope'"),
        (lambda d: d["States"]["Flip"].update(Next="Rotated"), "Flip.Next -> 'Rotated'"),
        (lambda d: d["States"]["ImageExists"].update(Default="Missing"), "ImageExists.Default -> 'Missing'"),
        (lambda d: d["States"]["ImageExists"]["Choices"][0].update(Next="X"), "ImageExists.Choices[0].Next -> 'X'"),
        (lambda d: d["States"]["Resize"]["Catch"][0].update(Next="Failed"), "Resize.Catch[0].Next -> 'Failed'"),
        (lambda d: d["States"]["Classify"]["Branches"][0].update(StartAt="Aggregate"), "Classify.Branches[0].StartAt"),
        (
            lambda d: d["States"]["Classify"]["Branches"][1]["States"]["ResNet"]["Catch"][0].update(Next="MarkFailed"),
            "Classify.Branches[1].ResNet.Catch[0].Next -> 'MarkFailed'",
        ),
        (lambda d: d["States"]["Rotate"].pop("TimeoutSeconds"), "Task Rotate has no TimeoutSeconds"),
        (lambda d: d["States"]["Rotate"].pop("Retry"), "Task Rotate has no Retry"),
        (
            lambda d: d["States"]["Update"]["Retry"][0]["ErrorEquals"].remove("Lambda.TooManyRequestsException"),
            "Task Update does not retry ['Lambda.TooManyRequestsException']",
        ),
        (
            lambda d: d["States"]["Resize"]["Retry"][1]["ErrorEquals"].remove("Sandbox.Timedout"),
            "Task Resize does not retry ['Sandbox.Timedout']",
        ),
        (
            lambda d: d["States"]["Classify"]["Branches"][2]["States"]["MobileNet"].pop("TimeoutSeconds"),
            "Classify.Branches[2].Task MobileNet has no TimeoutSeconds",
        ),
        (lambda d: d["States"].update(Orphan={"Type": "Succeed"}), "Orphan is unreachable"),
        (lambda d: d["States"]["Update"].update(Next="MarkFailed"), "Update: needs exactly one of Next or End"),
    ],
)
def test_validate_finds_each_structural_problem(change, expected):
    problems = mutate(change)
    assert any(expected in p for p in problems), problems


# --- runs on moto's Step Functions interpreter ----------------------------------


class InProcessLambda:
    """Answers moto's Lambda invocations with the lab's function code (no torch: a fake model runtime)."""

    def __init__(self, s3, ddb, table):
        add_paths("fetch_image", "grayscale", "flip", "rotate", "resize", "aggregate", "update", "mark_failed")
        import aggregate  # noqa: E401
        import fetch_image
        import flip
        import grayscale
        import mark_failed
        import resize
        import rotate
        import swl_infer
        import update

        swl_infer.RUNTIMES["fake"] = FakeClassifier
        swl_infer._LOADED.clear()
        self.calls: list[str] = []
        self.fail_models: set[str] = set()
        self.throttle_once: set[str] = set()
        models = {
            m: (
                lambda e, m=m: swl_infer.classify(
                    e, m, swl_infer.InferenceConfig(runtime="fake", fail=m in self.fail_models), s3
                )
            )
            for m in ("alexnet", "resnet", "mobilenet")
        }
        self.functions = {
            "fetch_image": lambda e: fetch_image.fetch_image(e, s3),
            "grayscale": lambda e: grayscale.grayscale(e, s3),
            "flip": lambda e: flip.flip(e, s3),
            "rotate": lambda e: rotate.rotate(e, s3),
            "resize": lambda e: resize.resize(e, s3),
            **models,
            "aggregate": aggregate.aggregate,
            "update": lambda e: update.update(e, ddb, table),
            "mark_failed": lambda e: mark_failed.mark_failed(e, ddb, table),
        }

    def __call__(self, parameters, region, state_credentials):
        name = parameters["FunctionName"].rsplit(":swlab-", 1)[1]
        self.calls.append(name)
        if name in self.throttle_once:
            self.throttle_once.discard(name)
            raise ClientError(
                {
                    "Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 429, "RequestId": "r"},
                },
                "Invoke",
            )
        try:
            payload = self.functions[name](json.loads(parameters["Payload"]))
        except Exception as exc:  # noqa: BLE001 - what the Lambda runtime reports for an unhandled error
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": error}
        return {"StatusCode": 200, "Payload": json.loads(json.dumps(payload))}


@pytest.fixture
def cloud(monkeypatch):
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3, ddb = boto3.client("s3", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        bucket, table = make_stack(s3, ddb, table="swlab-test-images")
        fake = InProcessLambda(s3, ddb, table)
        monkeypatch.setattr(lambda_eval_utils, "_invoke_lambda_function", fake)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        role = f"arn:aws:iam::{ACCOUNT}:role/swlab-states"
        arn = sfn.create_state_machine(name="swlab-classify", definition=asl.render(definition()), roleArn=role)[
            "stateMachineArn"
        ]
        yield {"s3": s3, "ddb": ddb, "bucket": bucket, "table": table, "sfn": sfn, "arn": arn, "lambda": fake}


def ingested(cloud, name="chelsea", image_id="img1"):
    """An item and object as ingest leaves them."""
    sample = next(s for s in list_samples() if s.name == name)
    key = f"raw/{image_id}.jpg"
    cloud["s3"].put_object(Bucket=cloud["bucket"], Key=key, Body=sample.path.read_bytes())
    item = {"image_id": image_id, "bucket": cloud["bucket"], "key": key, "sha256": sample.sha256, "status": "INGESTED"}
    cloud["ddb"].put_item(TableName=cloud["table"], Item={k: {"S": v} for k, v in item.items()})
    return image_id


def run(cloud, payload, timeout_s=60):
    sfn = cloud["sfn"]
    execution = sfn.start_execution(
        stateMachineArn=cloud["arn"], name=f"run-{time.monotonic_ns()}", input=json.dumps(payload)
    )
    deadline = time.monotonic() + timeout_s
    while True:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def stored(cloud, image_id="img1"):
    from boto3.dynamodb.types import TypeDeserializer

    raw = cloud["ddb"].get_item(TableName=cloud["table"], Key={"image_id": {"S": image_id}})["Item"]
    return {k: TypeDeserializer().deserialize(v) for k, v in raw.items()}


def test_run_classifies_an_ingested_image(cloud):
    image_id = ingested(cloud)
    result = run(cloud, {"image_id": image_id})
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["status"] == "CLASSIFIED" and output["models_contributing"] == ["alexnet", "mobilenet", "resnet"]
    assert output["models_failed"] == [] and output["weights"] == "untrained"
    item = stored(cloud)
    assert item["status"] == "CLASSIFIED" and item["consensus"]["label"] == output["consensus"]["label"]
    assert set(item["timings_ms"]) >= {"fetch_image", "grayscale", "flip", "rotate", "resize", "inference_resnet"}
    keys = sorted(
        o["Key"] for o in cloud["s3"].list_objects_v2(Bucket=cloud["bucket"], Prefix="processed/")["Contents"]
    )
    assert keys == [f"processed/img1/{s}.png" for s in ("flip", "grayscale", "original", "resize", "rotate")]
    assert cloud["lambda"].calls[:5] == ["fetch_image", "grayscale", "flip", "rotate", "resize"]


def test_options_in_the_input_reach_the_steps(cloud):
    ingested(cloud)
    result = run(
        cloud, {"image_id": "img1", "options": {"rotate_degrees": 180, "resize_width": 64, "resize_height": 48}}
    )
    assert result["status"] == "SUCCEEDED", result
    import io

    from PIL import Image

    body = cloud["s3"].get_object(Bucket=cloud["bucket"], Key="processed/img1/resize.png")["Body"].read()
    assert Image.open(io.BytesIO(body)).size == (64, 48)


def test_unknown_image_fails_with_image_not_found(cloud):
    result = run(cloud, {"image_id": "never-ingested"})
    assert (result["status"], result.get("error")) == ("FAILED", "ImageNotFound")
    assert "ingest the image first" in result["cause"] and cloud["lambda"].calls == []


def test_a_failing_model_leaves_an_error_record_and_the_image_is_still_classified(cloud):
    ingested(cloud)
    cloud["lambda"].fail_models.add("resnet")
    result = run(cloud, {"image_id": "img1"})
    assert result["status"] == "SUCCEEDED", result
    item = stored(cloud)
    assert item["status"] == "CLASSIFIED" and item["models_contributing"] == ["alexnet", "mobilenet"]
    assert item["models_failed"] == [
        {
            "model": "resnet",
            "error": "ModelFailure",
            "message": "resnet: forced failure (FAIL_MODEL=1 in the function's configuration)",
        }
    ]


def test_all_models_failing_marks_the_image_failed(cloud):
    ingested(cloud)
    cloud["lambda"].fail_models.update({"alexnet", "resnet", "mobilenet"})
    result = run(cloud, {"image_id": "img1"})
    assert (result["status"], result["error"]) == ("FAILED", "NoModelSucceeded")
    item = stored(cloud)
    assert (
        item["status"] == "FAILED"
        and item["error"] == "NoModelSucceeded"
        and "all 3 models failed" in item["error_cause"]
    )


def test_a_missing_object_marks_the_image_failed(cloud):
    ingested(cloud)
    cloud["s3"].delete_object(Bucket=cloud["bucket"], Key="raw/img1.jpg")
    result = run(cloud, {"image_id": "img1"})
    assert (result["status"], result["error"]) == ("FAILED", "ImageObjectMissing")
    item = stored(cloud)
    assert (item["status"], item["error"]) == ("FAILED", "ImageObjectMissing") and "does not exist" in item[
        "error_cause"
    ]
    assert cloud["lambda"].calls == ["fetch_image", "mark_failed"]


def test_lambda_throttling_is_retried(cloud):
    ingested(cloud)
    cloud["lambda"].throttle_once.add("grayscale")
    result = run(cloud, {"image_id": "img1"})
    assert result["status"] == "SUCCEEDED", result
    assert cloud["lambda"].calls.count("grayscale") == 2 and stored(cloud)["status"] == "CLASSIFIED"


def test_input_without_image_id_fails_clearly(cloud):
    for payload in ({"imageId": "img1"}, {"image_id": 42}):
        result = run(cloud, payload)
        assert (result["status"], result["error"]) == ("FAILED", "InvalidInput") and "image_id" in result["cause"]
    assert cloud["lambda"].calls == []


def test_the_fused_variant_is_generated_from_the_one_definition_and_valid():
    steps, fused = asl.parse(asl.CLASSIFY, "steps"), asl.parse(asl.CLASSIFY, "fused")
    assert steps == json.loads(asl.CLASSIFY.read_text())
    names = list(fused["States"])
    assert not set(asl.PREPROCESSING_STEPS) & set(names)
    assert names.index("FetchImage") + 1 == names.index("Preprocess")  # where Grayscale was
    pre = fused["States"]["Preprocess"]
    assert fused["States"]["FetchImage"]["Next"] == "Preprocess" and pre["Next"] == "Classify"
    assert pre["Parameters"] == {
        "FunctionName": "${PreprocessArn}",
        "Payload": {"image_id.$": "$.image_id", "image.$": "$.fetch.image", "options.$": "$.options"},
    }
    assert pre["Retry"] == steps["States"]["Grayscale"]["Retry"] and pre["ResultPath"] == "$.preprocess"
    assert fused["States"]["Classify"]["Parameters"]["image.$"] == "$.preprocess.image"
    timings = fused["States"]["Update"]["Parameters"]["Payload"]["timings_ms"]
    assert timings == {"fetch_image.$": "$.fetch.ms", "preprocess.$": "$.preprocess.ms"}
    arns = {**ARNS, "preprocess": "arn:aws:lambda:us-east-1:123456789012:function:swlab-preprocess"}
    subs = asl.classify_substitutions(arns, "swlab-test-images", "fused")
    assert "PreprocessArn" in subs and "GrayscaleArn" not in subs
    assert asl.validate(asl.load_definition(asl.CLASSIFY, subs, preprocessing="fused")) == []
    assert set(asl.classify_functions(preprocessing="fused")) == set(asl.classify_functions()) - {
        "grayscale",
        "flip",
        "rotate",
        "resize",
    } | {"preprocess"}
    with pytest.raises(asl.AslError, match="preprocessing must be one of"):
        asl.parse(asl.CLASSIFY, "merged")
    broken = json.loads(asl.CLASSIFY.read_text())
    broken["States"]["Flip"]["Next"] = "Resize"
    with pytest.raises(asl.AslError, match="not a chain"):
        asl.variant(broken, "fused")
