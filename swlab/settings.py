"""One settings object for the whole lab, and the one place that makes boto3 sessions and clients.

Precedence is explicit: argument > environment variable > default, and the
environment is read when :func:`load_settings` is called, never at import.

Environment variables (all optional):

=====================  ===========================================  ===========
variable               meaning                                      default
=====================  ===========================================  ===========
``SWLAB_TARGET``       ``local`` (embedded local cloud) or ``aws``  ``local``
``SWLAB_REGION``       AWS region (falls back to ``AWS_REGION``,     ``us-east-1``
                       then ``AWS_DEFAULT_REGION``)
``SWLAB_STACK``        stack name: prefix and tag of every resource ``swlab``
``AWS_ENDPOINT_URL``   endpoint of the local cloud (target local)   none
``SWLAB_RUNS_DIR``     where run directories are written            ``runs``
=====================  ===========================================  ===========

Code does not branch on ``target`` except where AWS itself differs; pointing
boto3 at the local cloud is configuration (``endpoint_url``), not code.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import boto3
from botocore.config import Config

TARGETS = ("local", "aws")
DEFAULT_REGION = "us-east-1"
DEFAULT_STACK = "swlab"
STACK_TAG_KEY = "swlab:stack"  # every resource of a stack carries this tag with the stack's name
# Credentials the local cloud accepts; never used for target "aws".
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_STACK_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class SettingsError(ValueError):
    """A setting has a value the lab cannot use; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one lab run (immutable; use :meth:`with_` to derive)."""

    target: str = "local"
    region: str = DEFAULT_REGION
    stack: str = DEFAULT_STACK
    endpoint_url: str | None = None
    runs_dir: Path = field(default=Path("runs"))

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise SettingsError(f"target must be one of {TARGETS}, got {self.target!r}")
        if not _STACK_RE.match(self.stack):
            raise SettingsError(
                f"stack {self.stack!r} must start with a lowercase letter and hold only "
                "lowercase letters, digits and '-' (at most 31 characters): it prefixes "
                "S3 bucket and IAM role names"
            )
        if self.target == "local" and not self.endpoint_url:
            # Allowed (the local cloud may not be started yet); clients() refuses later.
            pass

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["runs_dir"] = str(self.runs_dir)
        return d


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Resolve settings: keyword arguments > environment variables > defaults.

    ``None`` values in ``overrides`` count as "not given".
    """
    env = os.environ if env is None else env
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - set(Settings.__dataclass_fields__)
    if unknown:
        raise SettingsError(f"unknown settings: {sorted(unknown)}")
    resolved: dict[str, Any] = {
        "target": env.get("SWLAB_TARGET", "local"),
        "region": env.get("SWLAB_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        "stack": env.get("SWLAB_STACK", DEFAULT_STACK),
        "endpoint_url": env.get("AWS_ENDPOINT_URL") or None,
        "runs_dir": env.get("SWLAB_RUNS_DIR", "runs"),
    }
    resolved.update(given)
    resolved["runs_dir"] = Path(resolved["runs_dir"])
    if resolved["target"] == "aws" and "endpoint_url" not in given:
        # An AWS_ENDPOINT_URL left over from a local session must not redirect real calls.
        resolved["endpoint_url"] = None
    return Settings(**resolved)


def boto_session(settings: Settings) -> boto3.Session:
    """A boto3 session for the settings' target (local: fixed test credentials)."""
    if settings.target == "local":
        return boto3.Session(region_name=settings.region, **LOCAL_CREDENTIALS)
    return boto3.Session(region_name=settings.region)


def client(settings: Settings, service: str, session: boto3.Session | None = None, **config: Any) -> Any:
    """A boto3 client for ``service`` on the settings' target.

    ``config`` goes into :class:`botocore.config.Config` (e.g. ``read_timeout``).
    For the local target the endpoint is the local cloud's, and host prefixes
    (``sync-states.`` for StartSyncExecution) are not injected: the local
    cloud has one host.
    """
    session = session or boto_session(settings)
    kwargs: dict[str, Any] = {}
    if settings.target == "local":
        if not settings.endpoint_url:
            raise SettingsError(
                "target is 'local' but no endpoint is set: start the local cloud "
                "(scripts/localcloud start) and set AWS_ENDPOINT_URL, or pass endpoint_url"
            )
        kwargs["endpoint_url"] = settings.endpoint_url
        config.setdefault("inject_host_prefix", False)
    if service == "pricing" and settings.target == "aws":
        # The Price List API has endpoints in a few regions only.
        return session.client("pricing", region_name="us-east-1", config=Config(**config))
    return session.client(service, config=Config(**config), **kwargs)
