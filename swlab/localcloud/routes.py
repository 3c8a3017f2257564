"""What a data plane mounts in front of moto: a :class:`Route`, and the host it mounts on.

A leaf module: the server (which dispatches to routes) and the data planes
(which create them) both import it, so neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from swlab.localcloud.faults import FaultInjector

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


@dataclass(frozen=True)
class Route:
    """A data plane mounted in front of moto: ``matches(environ)`` picks the requests it answers."""

    name: str
    matches: Callable[[dict], bool]
    app: WSGIApp


class Host(Protocol):
    """What a data plane's ``mount(host)`` reads and fills in (the server's :class:`LocalCloud`)."""

    options: dict[str, Any]
    work_dir: Path
    account_id: str
    region: str
    routes: list[Route]
    faults: FaultInjector  # the fault rules in force (the Lambda data plane asks it per invoke)
    components: list[Any]  # objects with a shutdown() method, stopped in reverse order

    @property
    def endpoint_url(self) -> str: ...

    def moto_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Moto's WSGI app: a route may hand a request on to the control plane."""
        ...
