"""moto_patches_s3's S3 patches: each is still needed (moto's original behaviour, in this unpatched
pytest process), each keeps moto's answers, and S3 through the local cloud answers as AWS does.

The speed-ups are measured (moto_patches_s3's docstring says how), not timed here.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from swlab.localcloud import moto_patches_s3

pytestmark = pytest.mark.functional

SIZE = 3 * 2**20 + 123  # above moto's 1 MB in-memory buffer: the object lives in a temporary file


@pytest.fixture
def count_whole_reads(monkeypatch):
    """FakeKey.value counts its calls (each reads the whole object); restored after the test."""
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    for name in ("get_object", "key_response"):  # restored after the test if a patch replaces them
        monkeypatch.setattr(S3Response, name, getattr(S3Response, name))
    value = FakeKey.value
    reads = [0]

    def counting(key):
        reads[0] += 1
        return value.fget(key)

    monkeypatch.setattr(FakeKey, "value", property(counting, value.fset))
    return reads


def _in_process_bucket():
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    s3.create_bucket(Bucket="range-bucket")
    body = os.urandom(SIZE)
    s3.put_object(Bucket="range-bucket", Key="k", Body=body)
    return mock, s3, body


def test_moto_still_reads_the_whole_object_for_a_ranged_get(count_whole_reads):
    """moto 5.2.5: GetObject with Range reads ``key.value`` (the whole object) and slices it."""
    from moto.s3.responses import S3Response

    mock, s3, body = _in_process_bucket()
    try:
        count_whole_reads[0] = 0
        got = s3.get_object(Bucket="range-bucket", Key="k", Range="bytes=10-19")["Body"].read()
    finally:
        mock.stop()
    assert got == body[10:20]
    assert count_whole_reads[0] >= 1
    # what the patch relies on: the answer is key.value, moto slices it with len() and [a:b]
    assert "return 200, response_headers, key.value" in inspect.getsource(S3Response.get_object)
    handle_range = inspect.getsource(S3Response._handle_range_header)
    assert "len(response_content)" in handle_range and "response_content[begin : end + 1]" in handle_range
    assert 'request.headers["range"] != ""' in inspect.getsource(S3Response.key_response)


def test_patched_ranged_get_reads_only_its_range(count_whole_reads):
    mock, s3, body = _in_process_bucket()
    try:
        moto_patches_s3._ranged_get_reads_its_range({})
        count_whole_reads[0] = 0
        resp = s3.get_object(Bucket="range-bucket", Key="k", Range="bytes=1048570-2097159")
        got = resp["Body"].read()
        assert count_whole_reads[0] == 0
        assert got == body[1048570:2097160] and resp["ContentRange"] == f"bytes 1048570-2097159/{SIZE}"
        whole = s3.get_object(Bucket="range-bucket", Key="k")["Body"].read()  # no Range: moto's path, the whole value
        assert whole == body and count_whole_reads[0] == 1
    finally:
        mock.stop()


def test_object_view_reads_slices_and_sizes():
    class Key:
        def __init__(self, data: bytes) -> None:
            import io
            import threading

            self._value_buffer, self.size, self.lock = io.BytesIO(data), len(data), threading.Lock()

    view = moto_patches_s3.ObjectView(Key(b"0123456789"))
    assert len(view) == 10 and view[2:5] == b"234" and view[8:100] == b"89" and view[5:2] == b""
    assert view.read_all() == b"0123456789" and bool(view)
    with pytest.raises(TypeError):
        view[3]


# ---- through the local cloud (patched), as S3 answers ------------------------------------------


@pytest.fixture(scope="module")
def stored(aws):
    s3 = aws("s3")
    bucket = f"test-range-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(SIZE)
    s3.put_object(Bucket=bucket, Key="model.onnx", Body=body)
    yield s3, bucket, body
    s3.delete_object(Bucket=bucket, Key="model.onnx")
    s3.delete_bucket(Bucket=bucket)


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-1048999", 1000, 1048999),
        (f"bytes={SIZE - 10}-", SIZE - 10, SIZE - 1),  # open-ended
        ("bytes=-7", SIZE - 7, SIZE - 1),  # suffix
        (f"bytes=5-{SIZE + 100}", 5, SIZE - 1),  # past the end: clipped
    ],
)
def test_ranged_get_answers_206_with_the_bytes_and_content_range(stored, header, first, last):
    s3, bucket, body = stored
    resp = s3.get_object(Bucket=bucket, Key="model.onnx", Range=header)
    data = resp["Body"].read()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert resp["ContentRange"] == f"bytes {first}-{last}/{SIZE}"
    assert resp["ContentLength"] == last - first + 1
    assert hashlib.sha256(data).digest() == hashlib.sha256(body[first : last + 1]).digest()


def test_unsatisfiable_range_is_416_invalid_range(stored):
    s3, bucket, _ = stored
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="model.onnx", Range=f"bytes={SIZE}-{SIZE + 10}")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    assert err.value.response["Error"]["Code"] == "InvalidRange"


def test_a_range_s3_ignores_answers_the_whole_object(stored):
    """A multi-range header: S3 (and moto) answer 200 with the whole object."""
    s3, bucket, body = stored
    resp = s3.get_object(Bucket=bucket, Key="model.onnx", Range="bytes=0-1,5-6")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["Body"].read() == body


def test_a_multipart_download_reassembles_the_object(stored, tmp_path):
    """What the model functions do (s3transfer: HeadObject, then concurrent ranged GETs)."""
    from boto3.s3.transfer import TransferConfig

    s3, bucket, body = stored
    target = tmp_path / "model.onnx"
    config = TransferConfig(multipart_threshold=2**20, multipart_chunksize=2**20, max_concurrency=4)
    s3.download_file(bucket, "model.onnx", str(target), Config=config)
    assert target.read_bytes() == body
