"""Workflow 1 (ingest): request parsing, SSRF guard, image checks, storage order, HTTP answers."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import socket

import boto3
import pytest
from lambda_modules import REGION, add_paths, aws_calls_lines, load_handler, make_stack
from moto import mock_aws

from swlab.samples import ImageServer, list_samples

add_paths("ingest")
import ingest  # noqa: E402
import urlguard  # noqa: E402
from urlguard import FetchError, FetchLimits, fetch  # noqa: E402

pytestmark = pytest.mark.unit
HOST = "images.example"


@pytest.fixture(scope="module")
def server():
    with ImageServer() as srv:
        yield srv


def limits(server, **changes):
    base = dict(
        max_bytes=1024 * 1024,
        connect_timeout_s=1,
        read_timeout_s=1,
        total_timeout_s=5,
        max_redirects=3,
        allowed_hosts=frozenset({f"{HOST}:{server.port}"}),
    )
    return FetchLimits(**{**base, **changes})


def resolver(mapping):
    def resolve(host, port):
        try:  # IP literals resolve to themselves, as with getaddrinfo
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        if host not in mapping:
            raise socket.gaierror(f"unknown host {host}")
        return list(mapping[host])

    return resolve


LOCAL = resolver({HOST: ["127.0.0.1"], "127.0.0.1": ["127.0.0.1"]})


def url(server, path):
    return f"http://{HOST}:{server.port}/{path.lstrip('/')}"


def fetch_error(call) -> FetchError:
    with pytest.raises(FetchError) as info:
        call()
    return info.value


# --- request parsing -------------------------------------------------------


@pytest.mark.parametrize(
    "event, reason",
    [
        ({"body": "{not json"}, "bad_json"),
        ({"body": "[1, 2]"}, "bad_request"),
        ({"body": "{}"}, "missing_image_url"),
        ({"body": json.dumps({"image_url": ""})}, "missing_image_url"),
        ({"body": json.dumps({"image_url": 42})}, "missing_image_url"),
        ({"httpMethod": "POST", "body": None}, "bad_json"),
    ],
)
def test_parse_request_refuses_bad_bodies(event, reason):
    assert fetch_error(lambda: ingest.parse_request(event)).reason == reason


def test_parse_request_accepts_proxy_base64_and_direct_events():
    import base64

    body = json.dumps({"image_url": " http://a.example/x.jpg "})
    assert ingest.parse_request({"body": body}) == "http://a.example/x.jpg"
    encoded = {"body": base64.b64encode(body.encode()).decode(), "isBase64Encoded": True}
    assert ingest.parse_request(encoded) == "http://a.example/x.jpg"
    assert ingest.parse_request({"image_url": "https://b.example/y.png"}) == "https://b.example/y.png"


# --- address checks --------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "100.100.100.200",
        "224.0.0.1",
        "239.255.255.250",
        "0.0.0.0",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "192.0.0.192",
    ],
)
def test_internal_addresses_are_forbidden(address):
    assert urlguard.forbidden_reason(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert urlguard.forbidden_reason(address) is None


def test_metadata_address_is_named_as_such():
    assert urlguard.forbidden_reason("169.254.169.254") == "cloud metadata"


def test_every_resolved_address_is_checked():
    mixed = resolver({"evil.example": ["8.8.8.8", "10.0.0.5"]})
    error = fetch_error(lambda: urlguard.pick_address("evil.example", 80, FetchLimits(), mixed))
    assert (error.reason, error.status) == ("forbidden_address", 400)
    assert urlguard.pick_address("ok.example", 80, FetchLimits(), resolver({"ok.example": ["8.8.8.8"]})) == "8.8.8.8"


def test_allow_list_is_exact_host_and_port():
    lim = FetchLimits(allowed_hosts=frozenset({"127.0.0.1:8765"}))
    local = resolver({"127.0.0.1": ["127.0.0.1"]})
    assert urlguard.pick_address("127.0.0.1", 8765, lim, local) == "127.0.0.1"
    assert fetch_error(lambda: urlguard.pick_address("127.0.0.1", 8766, lim, local)).reason == "forbidden_address"


def test_real_resolver_and_default_limits_refuse_loopback(server):
    error = fetch_error(lambda: fetch(server.url("/samples/chelsea.jpg"), FetchLimits()))
    assert (error.reason, error.status) == ("forbidden_address", 400)
    assert fetch_error(lambda: fetch(f"http://localhost:{server.port}/", FetchLimits())).reason == "forbidden_address"


# --- downloads against the local image server -------------------------------


def test_fetch_downloads_a_sample(server):
    sample = list_samples()[0]
    got = fetch(url(server, f"/samples/{sample.file}"), limits(server), LOCAL)
    assert got.body == sample.path.read_bytes() and got.content_type == "image/jpeg" and got.redirects == 0


@pytest.mark.parametrize(
    "bad_url, reason",
    [
        ("ftp://images.example/x.jpg", "bad_scheme"),
        ("file:///etc/passwd", "bad_scheme"),
        ("gopher://images.example/", "bad_scheme"),
        ("http:///nohost", "bad_url"),
        ("http://images.example:99999/x", "bad_url"),
    ],
)
def test_bad_urls_are_refused(server, bad_url, reason):
    error = fetch_error(lambda: fetch(bad_url, limits(server), LOCAL))
    assert (error.reason, error.status) == (reason, 400)


@pytest.mark.parametrize(
    "path, reason, status",
    [
        ("/redirect/private", "forbidden_address", 400),
        ("/redirect?to=http://10.0.0.1/x.jpg", "forbidden_address", 400),
        ("/redirect?to=file:///etc/passwd", "bad_scheme", 400),
        ("/redirect/loop", "too_many_redirects", 502),
        ("/status/404", "upstream_status", 502),
        ("/status/503", "upstream_status", 502),
        ("/bad/oversized?bytes=2000000", "too_large", 400),
        ("/bad/oversized?bytes=2000000&declare=0", "too_large", 400),
    ],
)
def test_fetch_failures(server, path, reason, status):
    error = fetch_error(lambda: fetch(url(server, path), limits(server), LOCAL))
    assert (error.reason, error.status) == (reason, status)


def test_redirect_to_loopback_is_refused_when_only_the_named_host_is_allowed(server):
    target = f"http://127.0.0.1:{server.port}/samples/chelsea.jpg"
    error = fetch_error(lambda: fetch(url(server, f"/redirect?to={target}"), limits(server), LOCAL))
    assert error.reason == "forbidden_address"


def test_redirect_to_an_allowed_place_is_followed(server):
    got = fetch(url(server, "/redirect?to=/samples/chelsea.jpg"), limits(server), LOCAL)
    assert got.redirects == 1 and got.url.endswith("/samples/chelsea.jpg")


def test_slow_upstream_times_out(server):
    error = fetch_error(lambda: fetch(url(server, "/slow?delay=3"), limits(server, read_timeout_s=0.3), LOCAL))
    assert (error.reason, error.status) == ("upstream_timeout", 502)


def test_unreachable_hosts_are_upstream_failures(server):
    unknown = fetch_error(lambda: fetch("http://nowhere.example/x.jpg", limits(server), LOCAL))
    assert (unknown.reason, unknown.status) == ("unreachable", 502)
    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    lim = limits(server, allowed_hosts=frozenset({f"{HOST}:{closed}"}))
    refused = fetch_error(lambda: fetch(f"http://{HOST}:{closed}/x.jpg", lim, LOCAL))
    assert (refused.reason, refused.status) == ("unreachable", 502)


# --- image checks ----------------------------------------------------------


def test_inspect_image_reads_format_and_size():
    for sample in list_samples():
        info = ingest.inspect_image(sample.path.read_bytes(), 40_000_000)
        assert (info["format"], info["width"], info["height"]) == ("JPEG", sample.width, sample.height)
        assert (info["ext"], info["content_type"]) == ("jpg", "image/jpeg")


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"<html>not an image</html>", "not_an_image"),
        (b"", "not_an_image"),
        ("truncated", "truncated_image"),
        ("bomb", "too_many_pixels"),
    ],
)
def test_inspect_image_refuses_bad_bodies(body, reason):
    from swlab.samples import png_bomb

    data = list_samples()[0].path.read_bytes()
    body = {"truncated": data[: len(data) // 2], "bomb": png_bomb()}.get(body, body)
    error = fetch_error(lambda: ingest.inspect_image(body, 40_000_000))
    assert (error.reason, error.status) == (reason, 400)


def test_pillow_decompression_bomb_warning_is_an_error():
    from swlab.samples import png_bomb

    # 10000x10000 = 100 M pixels: above Pillow's MAX_IMAGE_PIXELS (warning zone), below our own limit here.
    error = fetch_error(lambda: ingest.inspect_image(png_bomb(10_000, 10_000), 10**12))
    assert error.reason == "too_many_pixels" and "decompression bomb" in error.message


def test_pixel_limit_is_configurable():
    sample = list_samples()[0]
    assert fetch_error(lambda: ingest.inspect_image(sample.path.read_bytes(), 1000)).reason == "too_many_pixels"


# --- storage: S3 first, then DynamoDB, nothing half-written -----------------

ENV = {"BUCKET": "swlab-test-bucket", "TABLE": "swlab-test-images"}


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3, ddb = boto3.client("s3", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        make_stack(s3, ddb, ENV["BUCKET"], ENV["TABLE"])
        yield s3, ddb


def config(server, **env):
    return ingest.config_from_env({**ENV, "ALLOWED_HOSTS": f"{HOST}:{server.port}", **env})


def local_fetcher(u, lim):
    return fetch(u, lim, LOCAL)


def test_ingest_stores_object_then_item(server, aws):
    s3, ddb = aws
    sample = next(s for s in list_samples() if s.name == "chelsea")
    item = ingest.ingest(url(server, "/samples/chelsea.jpg"), config(server), s3, ddb, fetcher=local_fetcher)
    assert item["key"] == f"raw/{item['image_id']}.jpg" and item["status"] == "INGESTED"
    assert (item["width"], item["height"], item["bytes"], item["sha256"]) == (
        sample.width,
        sample.height,
        sample.bytes,
        sample.sha256,
    )
    stored = ddb.get_item(TableName=ENV["TABLE"], Key={"image_id": {"S": item["image_id"]}})["Item"]
    assert stored["status"] == {"S": "INGESTED"} and stored["width"] == {"N": str(sample.width)}
    assert stored["created_at"]["S"].endswith("Z") and stored["source_url"]["S"].endswith("/samples/chelsea.jpg")
    body = s3.get_object(Bucket=ENV["BUCKET"], Key=item["key"])
    assert body["Body"].read() == sample.path.read_bytes() and body["ContentType"] == "image/jpeg"


def test_existing_object_is_never_overwritten(server, aws):
    s3, ddb = aws
    first = ingest.ingest(url(server, "/samples/coffee.jpg"), config(server), s3, ddb, fetcher=local_fetcher)
    with pytest.raises(s3.exceptions.ClientError, match="PreconditionFailed"):
        ingest.ingest(
            url(server, "/samples/rocket.jpg"),
            config(server),
            s3,
            ddb,
            fetcher=local_fetcher,
            new_id=lambda: first["image_id"],
        )
    kept = s3.get_object(Bucket=ENV["BUCKET"], Key=first["key"])["Body"].read()
    assert hashlib.sha256(kept).hexdigest() == first["sha256"]
    assert len(ddb.scan(TableName=ENV["TABLE"])["Items"]) == 1


def test_failed_item_write_removes_the_object(server, aws):
    s3, ddb = aws
    ddb.put_item(TableName=ENV["TABLE"], Item={"image_id": {"S": "taken"}, "status": {"S": "INGESTED"}})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ingest.ingest(
            url(server, "/samples/rocket.jpg"), config(server), s3, ddb, fetcher=local_fetcher, new_id=lambda: "taken"
        )
    assert s3.list_objects_v2(Bucket=ENV["BUCKET"]).get("Contents", []) == []
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ingest.ingest(
            url(server, "/samples/rocket.jpg"), config(server, TABLE="missing"), s3, ddb, fetcher=local_fetcher
        )
    assert s3.list_objects_v2(Bucket=ENV["BUCKET"]).get("Contents", []) == []
    assert [i["image_id"]["S"] for i in ddb.scan(TableName=ENV["TABLE"])["Items"]] == ["taken"]


@pytest.mark.parametrize(
    "path, status, error",
    [
        ("/samples/astronaut.jpg", 201, None),
        ("/bad/not-image", 400, "not_an_image"),
        ("/bad/truncated", 400, "truncated_image"),
        ("/bad/bomb", 400, "too_many_pixels"),
        ("/bad/oversized?bytes=30000000", 400, "too_large"),
        ("/redirect/private", 400, "forbidden_address"),
        ("/status/500", 502, "upstream_status"),
    ],
)
def test_handle_answers_and_leaves_nothing_on_refusal(server, aws, path, status, error):
    s3, ddb = aws
    result = ingest.handle(
        {"body": json.dumps({"image_url": url(server, path)})}, config(server), s3, ddb, fetcher=local_fetcher
    )
    body = json.loads(result["body"])
    assert result["statusCode"] == status and result["headers"]["Content-Type"] == "application/json"
    items = ddb.scan(TableName=ENV["TABLE"])["Items"]
    objects = s3.list_objects_v2(Bucket=ENV["BUCKET"]).get("Contents", [])
    if error:
        assert body["error"] == error and body["message"] and items == [] and objects == []
    else:
        assert len(items) == 1 and len(objects) == 1 and body["image_id"] == items[0]["image_id"]["S"]


def test_handle_reports_storage_failure_as_500(server, aws):
    s3, ddb = aws
    result = ingest.handle(
        {"body": json.dumps({"image_url": url(server, "/samples/camera.jpg")})},
        config(server, BUCKET="no-such-bucket"),
        s3,
        ddb,
        fetcher=local_fetcher,
    )
    assert result["statusCode"] == 500 and json.loads(result["body"])["error"] == "storage_failed"
    assert ddb.scan(TableName=ENV["TABLE"])["Items"] == []


def test_handler_module_reads_env_and_allows_the_lab_server(server, aws, monkeypatch, capsys):
    for name, value in {**ENV, "ALLOWED_HOSTS": server.allowed_host}.items():
        monkeypatch.setenv(name, value)
    handler = load_handler("ingest")
    ok = handler.handler({"body": json.dumps({"image_url": server.url("/samples/rocket.jpg")})}, None)
    assert ok["statusCode"] == 201, ok
    # the requests the cost model counts: one object, one item (and the write units DynamoDB reported)
    (line,) = aws_calls_lines(capsys.readouterr().out)
    assert line["calls"] == {"s3:PutObject": 1, "dynamodb:PutItem": 1}
    assert list(line["capacity_units"]) == ["dynamodb:PutItem"] and line["capacity_units"]["dynamodb:PutItem"] > 0
    private = handler.handler({"body": json.dumps({"image_url": server.url("/redirect/private")})}, None)
    assert private["statusCode"] == 400 and json.loads(private["body"])["error"] == "forbidden_address"
    assert aws_calls_lines(capsys.readouterr().out) == []  # refused before any AWS call


def test_config_rejects_missing_and_malformed_values():
    import swl_env

    with pytest.raises(swl_env.ConfigError, match="BUCKET"):
        ingest.config_from_env({"TABLE": "t"})
    with pytest.raises(swl_env.ConfigError, match="MAX_IMAGE_BYTES"):
        ingest.config_from_env({**ENV, "MAX_IMAGE_BYTES": "lots"})
    cfg = ingest.config_from_env({**ENV, "ALLOWED_HOSTS": "127.0.0.1:8765, Images.Example"})
    assert cfg.limits.allowed_hosts == {"127.0.0.1:8765", "images.example"}


def test_samples_match_their_records_and_carry_licences():
    samples = list_samples()
    assert len(samples) == 5
    for sample in samples:
        data = sample.path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == sample.sha256 and len(data) == sample.bytes < 300_000
        assert sample.license and sample.source.startswith("scikit-image 0.26.0")


def test_image_server_counts_hits_and_answers_unknown_routes(server):
    import urllib.error
    import urllib.request

    before = server.hits["/samples/coffee.jpg"]
    with urllib.request.urlopen(server.url("/samples/coffee.jpg")) as reply:
        assert reply.headers["Content-Type"] == "image/jpeg"
    assert server.hits["/samples/coffee.jpg"] == before + 1
    for path in ("/nothing", "/samples/secret.txt", "/bad/other"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server.url(path))
        assert info.value.code == 404
    assert server.host == "127.0.0.1" and len(server.sample_urls()) == 5
