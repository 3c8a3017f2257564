"""Workflow 1: download an image by URL, check it, store it in S3, record it in DynamoDB.

Order matters for "nothing half-written": the S3 object is put first, then the
DynamoDB item with a condition that it does not exist; if that write fails the
S3 object is deleted again. A reader that finds an item therefore always finds
its object.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import swl_env
import swl_image
from PIL import Image
from swl_errors import InvalidImage
from urlguard import Fetched, FetchError, FetchLimits, fetch

FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}


class IngestError(FetchError):
    """A request the function refuses (same shape as a FetchError: reason, message, status)."""


@dataclass(frozen=True)
class IngestConfig:
    bucket: str
    table: str
    limits: FetchLimits
    max_pixels: int = 40_000_000
    raw_prefix: str = "raw/"
    max_body_bytes: int = 16 * 1024  # MAX_BODY_BYTES: a request is {"image_url": ...}; more is refused with 413


def config_from_env(env: Mapping[str, str] | None = None) -> IngestConfig:
    limits = FetchLimits(
        max_bytes=swl_env.get_int("MAX_IMAGE_BYTES", 10 * 1024 * 1024, env, minimum=1),
        connect_timeout_s=swl_env.get_float("CONNECT_TIMEOUT_S", 3.0, env),
        read_timeout_s=swl_env.get_float("READ_TIMEOUT_S", 5.0, env),
        total_timeout_s=swl_env.get_float("DOWNLOAD_TIMEOUT_S", 15.0, env),
        max_redirects=swl_env.get_int("MAX_REDIRECTS", 3, env, minimum=0),
        allowed_hosts=frozenset(h.lower() for h in swl_env.get_list("ALLOWED_HOSTS", env)),
    )
    return IngestConfig(
        bucket=swl_env.get_str("BUCKET", env=env),
        table=swl_env.get_str("TABLE", env=env),
        limits=limits,
        max_pixels=swl_env.get_int("MAX_IMAGE_PIXELS", 40_000_000, env, minimum=1),
        max_body_bytes=swl_env.get_int("MAX_BODY_BYTES", IngestConfig.max_body_bytes, env, minimum=1),
    )


def _body(event: Mapping[str, Any], max_bytes: int) -> bytes:
    """The proxy event's body as bytes: 413 over ``max_bytes``, 400 if it is not a string or not valid base64."""
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise IngestError("bad_json", "the request body is not valid JSON", 400)
    too_large = IngestError("body_too_large", f"the request body is more than {max_bytes} bytes", 413)
    if not event.get("isBase64Encoded"):
        if len(raw) > max_bytes or len(body := raw.encode("utf-8", "surrogatepass")) > max_bytes:
            raise too_large
        return body
    if len(raw) > (max_bytes + 2) // 3 * 4 + 4:
        raise too_large
    try:
        body = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise IngestError("bad_json", "the request body is marked base64 but is not valid base64", 400) from None
    if len(body) > max_bytes:
        raise too_large
    return body


def parse_request(event: Mapping[str, Any], max_body_bytes: int = IngestConfig.max_body_bytes) -> str:
    """The image URL from an API Gateway proxy event (or a direct ``{"image_url": ...}`` invoke)."""
    if not isinstance(event, Mapping):
        raise IngestError("bad_request", f"the event must be a JSON object, got {type(event).__name__}", 400)
    if "body" in event or "httpMethod" in event:
        body = _body(event, max_body_bytes)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise IngestError("bad_json", "the request body is not valid JSON", 400) from None
    else:
        payload = event
    if not isinstance(payload, dict):
        kind = {list: "an array", str: "a string", type(None): "null"}.get(type(payload), type(payload).__name__)
        raise IngestError("bad_request", f"the request body must be a JSON object, got {kind}", 400)
    url = payload.get("image_url")
    if not isinstance(url, str) or not url.strip():
        raise IngestError("missing_image_url", "the request body needs a non-empty string field image_url", 400)
    return url.strip()


def inspect_image(body: bytes, max_pixels: int) -> dict[str, Any]:
    """Format, size and type of ``body``; IngestError if it is not a complete, reasonable image."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that: treat the warning as the error it is.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(body), formats=list(FORMATS)) as image:
                fmt, width, height = image.format, image.width, image.height
                if width * height > max_pixels:
                    raise IngestError(
                        "too_many_pixels", f"{width}x{height} pixels is more than the limit {max_pixels}", 400
                    )
                image.verify()
            with Image.open(io.BytesIO(body), formats=list(FORMATS)) as image:
                image.load()  # verify() does not decode pixel data: load() finds truncated files
                swl_image.check(image, "the image")  # what fetch_image and the models could not convert
    except IngestError:
        raise
    except InvalidImage as exc:
        raise IngestError("unsupported_image", str(exc), 400) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise IngestError("too_many_pixels", f"decompression bomb refused: {exc}", 400) from None
    except Image.UnidentifiedImageError:
        raise IngestError("not_an_image", f"the body is not a {'/'.join(FORMATS)} image", 400) from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = "truncated_image" if "truncated" in str(exc).lower() else "corrupt_image"
        raise IngestError(reason, f"the image cannot be decoded: {exc}", 400) from None
    ext, content_type = FORMATS[fmt]
    return {"format": fmt, "ext": ext, "content_type": content_type, "width": width, "height": height}


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_dynamodb(item: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Strings and integers only (all this item holds) in DynamoDB's typed JSON."""
    return {k: ({"N": str(v)} if isinstance(v, int) else {"S": str(v)}) for k, v in item.items()}


def ingest(
    url: str,
    cfg: IngestConfig,
    s3: Any,
    ddb: Any,
    fetcher: Callable[[str, FetchLimits], Fetched] = fetch,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    now: Callable[[], str] = _now_iso,
) -> dict[str, Any]:
    """Download, check and store one image; return its metadata item."""
    fetched = fetcher(url, cfg.limits)
    info = inspect_image(fetched.body, cfg.max_pixels)
    image_id = new_id()
    key = f"{cfg.raw_prefix}{image_id}.{info['ext']}"
    sha256 = hashlib.sha256(fetched.body).hexdigest()
    stamp = now()
    item = {
        "image_id": image_id,
        "source_url": url,
        "bucket": cfg.bucket,
        "key": key,
        "content_type": info["content_type"],
        "format": info["format"],
        "bytes": len(fetched.body),
        "width": info["width"],
        "height": info["height"],
        "sha256": sha256,
        "status": "INGESTED",
        "created_at": stamp,
        "updated_at": stamp,
    }
    s3.put_object(
        Bucket=cfg.bucket,
        Key=key,
        Body=fetched.body,
        ContentType=info["content_type"],
        Metadata={"image-id": image_id, "sha256": sha256},
        IfNoneMatch="*",
    )  # never overwrite
    try:
        ddb.put_item(
            TableName=cfg.table,
            Item=to_dynamodb(item),
            ConditionExpression="attribute_not_exists(image_id)",
            ReturnConsumedCapacity="TOTAL",
        )  # the units it cost, for the lab's cost model (swl_log)
    except Exception:
        s3.delete_object(Bucket=cfg.bucket, Key=key)  # no object without its item either
        raise
    return item


def response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """An API Gateway proxy (1.0) response."""
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def handle(
    event: Mapping[str, Any], cfg: IngestConfig, s3: Any, ddb: Any, fetcher: Callable[..., Fetched] = fetch
) -> dict[str, Any]:
    """Event in, proxy response out: 201 created, 400/413 refused, 502 upstream failure, 500 storage failure."""
    try:
        item = ingest(parse_request(event, cfg.max_body_bytes), cfg, s3, ddb, fetcher=fetcher)
    except FetchError as exc:
        return response(exc.status, {"error": exc.reason, "message": exc.message})
    except Exception as exc:  # noqa: BLE001 - S3/DynamoDB failures: nothing was left behind
        return response(500, {"error": "storage_failed", "message": f"{type(exc).__name__}: {exc}"})
    summary = {k: item[k] for k in ("image_id", "bucket", "key", "bytes", "width", "height", "format", "sha256")}
    return response(201, summary)
