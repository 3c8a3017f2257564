"""Provisioned concurrency (``DeployOptions.provisioned_concurrency``): a published version, the alias
``live`` on it, and that many initialised environments kept ready for it.

AWS applies provisioned concurrency to a version or an alias, never to ``$LATEST``; the state machine
must then invoke the alias (``state_machine_values`` uses a function's ``invoke_arn``), or its calls go
to on-demand environments of ``$LATEST``. The local cloud implements the same API
(``swlab/localcloud/lambda_runtime/provisioned.py``). For each function the option names:

1. ``PublishVersion`` (idempotent: an unchanged ``$LATEST`` returns the latest version);
2. the alias ``live`` created or moved to that version;
3. ``PutProvisionedConcurrencyConfig`` on ``live``; then :func:`wait_ready` waits (bounded) until every
   configuration is ``READY`` (a torch function's init takes 10-30 s on 2 cores, minutes on AWS).

A function the option does not name loses its configuration (the alias stays, unused) and is invoked
unqualified again. Deleting a function deletes its versions, aliases and configurations.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from swlab.provision.awserrors import error_code
from swlab.provision.changes import ChangeReport

ALIAS = "live"
READY_TIMEOUT_S = 900.0


class ProvisionedConcurrencyError(RuntimeError):
    """A provisioned concurrency configuration failed or did not become ready in time."""


def ensure_provisioned(lam: Any, fname: str, arn: str, count: int | None, report: ChangeReport) -> dict[str, Any]:
    """``count`` provisioned environments on ``fname``'s alias ``live`` (None: none); its outputs' fields.

    Returns ``{"invoke_arn", "provisioned_concurrency", "version"}``: what the state machine invokes.
    A function without the alias is left alone when ``count`` is None (no call to the provisioned
    concurrency API, which moto, the AWS rehearsal's backend, does not have).
    """
    alias = _get(lambda: lam.get_alias(FunctionName=fname, Name=ALIAS), "ResourceNotFoundException")
    current = (
        _get(
            lambda: lam.get_provisioned_concurrency_config(FunctionName=fname, Qualifier=ALIAS),
            "ProvisionedConcurrencyConfigNotFoundException",
        )
        if alias is not None
        else None
    )
    if not count:
        if current is not None:
            lam.delete_provisioned_concurrency_config(FunctionName=fname, Qualifier=ALIAS)
            report.record("provisioned concurrency", f"{fname}:{ALIAS}", "deleted")
        return {"invoke_arn": arn, "provisioned_concurrency": None, "version": None}
    version = str(lam.publish_version(FunctionName=fname)["Version"])
    moved = alias is None or str(alias.get("FunctionVersion")) != version
    if alias is None:
        lam.create_alias(FunctionName=fname, Name=ALIAS, FunctionVersion=version)
    elif moved:
        lam.update_alias(FunctionName=fname, Name=ALIAS, FunctionVersion=version)
    changed = moved or current is None or int(current.get("RequestedProvisionedConcurrentExecutions", 0)) != count
    if changed:
        lam.put_provisioned_concurrency_config(
            FunctionName=fname, Qualifier=ALIAS, ProvisionedConcurrentExecutions=count
        )
    report.record(
        "provisioned concurrency",
        f"{fname}:{ALIAS}",
        "created" if current is None else ("updated" if changed else "unchanged"),
        f"{count} on version {version}",
    )
    return {"invoke_arn": f"{arn}:{ALIAS}", "provisioned_concurrency": count, "version": version}


def _get(call: Callable[[], dict[str, Any]], missing: str) -> dict[str, Any] | None:
    """``call()``'s answer, or None when it fails with the error code ``missing``."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - botocore's ClientError subclasses
        if error_code(exc) != missing:
            raise
        return None


def wait_ready(
    lam: Any,
    fnames: Iterable[str],
    timeout_s: float = READY_TIMEOUT_S,
    poll_s: float = 2.0,
    say: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Until every function's ``live`` configuration is READY; FAILED or ``timeout_s`` → one clear error."""
    pending, started, last_said = list(fnames), clock(), 0.0
    while pending:
        still = []
        for fname in pending:
            status = lam.get_provisioned_concurrency_config(FunctionName=fname, Qualifier=ALIAS)
            if status["Status"] == "FAILED":
                raise ProvisionedConcurrencyError(
                    f"provisioned concurrency of {fname}:{ALIAS} failed: {status.get('StatusReason', 'no reason given')}"
                )
            if status["Status"] != "READY":
                still.append(fname)
        pending, waited = still, clock() - started
        if not pending:
            return
        if waited >= timeout_s:
            raise ProvisionedConcurrencyError(
                f"provisioned concurrency of {', '.join(pending)} not READY after {timeout_s:.0f} s"
            )
        if say is not None and waited - last_said >= 10:
            last_said = waited
            say(f"waiting     provisioned concurrency of {len(pending)} functions to initialise ({waited:.0f} s)")
        sleep(poll_s)
