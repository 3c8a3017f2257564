"""The one set of AWS error and retry helpers provisioning uses (deploy and teardown alike).

:func:`is_missing` knows the "no such resource" codes of every service the lab
uses; :func:`retry` waits out IAM propagation (a new role is usable by Lambda
and Step Functions only after a few seconds on AWS; the local cloud succeeds at
once); :func:`retry_throttled` waits out AWS's one-DeleteRestApi-per-30-s limit.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from botocore.exceptions import ClientError

from swlab.provision.changes import Progress, log


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def is_missing(exc: BaseException) -> bool:
    """True for the "no such resource" errors of the services the lab uses."""
    code = error_code(exc)
    return code in {
        "NoSuchEntity",
        "ResourceNotFoundException",
        "NotFoundException",
        "NoSuchBucket",
        "404",
        "StateMachineDoesNotExist",
        "NoSuchBucketPolicy",
        "NoSuchTagSet",
        "NoSuchTagSetError",
        "NoSuchPublicAccessBlockConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError",
        "RepositoryNotFoundException",
        "NoSuchLifecycleConfiguration",
    } or (code == "InvalidParameterValueException" and "does not exist" in str(exc))


def get_or_none(read: Callable[[], Any]) -> Any:
    """``read()``, or ``None`` when the thing read does not exist."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001
        if is_missing(exc):
            return None
        raise


def delete_if_present(delete: Callable[[], Any]) -> None:
    """``delete()``; a resource already gone is fine."""
    try:
        delete()
    except Exception as exc:  # noqa: BLE001
        if not is_missing(exc):
            raise


def role_not_ready(exc: Exception) -> bool:
    """A new role (or its policy) not yet visible to the service: Lambda's "cannot be assumed",
    Step Functions' "not authorized to assume" / "not authorized to access the Log Destination"."""
    text = str(exc).lower()
    return error_code(exc) in ("InvalidParameterValueException", "AccessDeniedException") and (
        "assume" in text or "log destination" in text
    )


def retry(
    call: Callable[[], Any],
    when: Callable[[ClientError], bool],
    timeout_s: float = 90.0,
    what: str = "",
    progress: Progress | None = None,
) -> Any:
    """``call()``, retried with backoff while it raises a ClientError that ``when`` accepts.

    Used where AWS needs time (a new IAM role is usable by Lambda and Step
    Functions only after a few seconds); the local cloud succeeds at once.
    """
    deadline, delay, told = time.monotonic() + timeout_s, 1.0, False
    while True:
        try:
            return call()
        except ClientError as exc:
            if not when(exc) or time.monotonic() + delay > deadline:
                raise
            if not told and what:
                (progress or log.info)(f"waiting   {what}: {error_code(exc)}, retrying")
                told = True
            time.sleep(delay)
            delay = min(delay * 1.6, 8.0)


def retry_throttled(call: Callable[[], Any], timeout_s: float = 120.0) -> Any:
    """AWS allows one DeleteRestApi per 30 s per account: wait out TooManyRequestsException."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "TooManyRequestsException" or time.monotonic() > deadline:
                raise
            time.sleep(5.0)
