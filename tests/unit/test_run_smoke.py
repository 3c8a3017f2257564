"""swlab.run.smoke: HTTP with the API key, the item's outcome, the labels table, the step images figure."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from swlab.run import smoke

pytestmark = pytest.mark.unit


class _Api(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if self.headers.get("x-api-key") != "k":
            status, answer = 403, {"message": "Forbidden"}
        else:
            status, answer = 201, {"echo": body, "path": self.path}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_post_sends_json_with_the_key(api):
    answer = smoke.post(f"{api}/ingest", {"image_url": "u"}, "k")
    assert answer.status == 201 and answer.body == {"echo": {"image_url": "u"}, "path": "/ingest"}
    assert answer.elapsed_ms > 0


def test_post_returns_http_errors_instead_of_raising(api):
    answer = smoke.post(f"{api}/ingest", {}, "wrong")
    assert answer.status == 403 and answer.body == {"message": "Forbidden"}


@pytest.fixture
def aws():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "image_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "image_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="smoke-bucket")
        yield ddb, s3


def test_outcome_is_read_with_plain_numbers(aws):
    ddb, _ = aws
    ddb.put_item(
        TableName="t",
        Item={
            "image_id": {"S": "i1"},
            "status": {"S": "CLASSIFIED"},
            "bytes": {"N": "42"},
            "labels": {"M": {"resnet": {"L": [{"M": {"label": {"S": "cat"}, "probability": {"N": "0.75"}}}]}}},
        },
    )
    item = smoke.wait_for_outcome(ddb, "t", "i1", timeout_s=1)
    assert item["bytes"] == 42 and isinstance(item["bytes"], int)
    assert item["labels"]["resnet"][0] == {"label": "cat", "probability": 0.75}
    table = smoke.labels_table(item)
    assert table.to_dict("records") == [{"model": "resnet", "rank": 1, "label": "cat", "probability": 0.75}]


def test_waiting_for_an_unfinished_image_times_out_with_its_status(aws):
    ddb, _ = aws
    ddb.put_item(TableName="t", Item={"image_id": {"S": "i2"}, "status": {"S": "INGESTED"}})
    with pytest.raises(TimeoutError, match="status: INGESTED"):
        smoke.wait_for_outcome(ddb, "t", "i2", timeout_s=0.3, poll_s=0.1)
    with pytest.raises(TimeoutError, match="no item"):
        smoke.wait_for_outcome(ddb, "t", "nope", timeout_s=0.2, poll_s=0.1)


def test_step_images_figure_shows_each_step_and_marks_missing_ones(aws):
    _, s3 = aws
    for step, mode in (("original", "RGB"), ("grayscale", "L")):
        buf = io.BytesIO()
        Image.new(mode, (32, 16)).save(buf, "PNG")
        s3.put_object(Bucket="smoke-bucket", Key=f"processed/i3/{step}.png", Body=buf.getvalue())
    fig = smoke.step_images_figure(s3, "smoke-bucket", "i3", steps=("original", "grayscale", "flip"))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "original\n32×16 RGB" and titles[1] == "grayscale\n32×16 L" and titles[2] == "flip"
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 0]
    assert fig.axes[2].texts[0].get_text() == "missing"
