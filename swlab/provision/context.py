"""The deploy context: everything an ensure step needs, passed as one frozen argument.

:class:`DeployContext` holds the settings, the (lazily made) boto3 clients,
the change report, the stack's names and tags, and the deploy options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from swlab.provision.changes import ChangeReport, Progress
from swlab.provision.naming import Names, stack_tags
from swlab.provision.options import DeployOptions
from swlab.settings import Settings, client

ClientFactory = Callable[[str], Any]
Found = tuple[str, str, Callable[[], None]]  # what a teardown finder yields: (kind, name, delete)


class Clients:
    """boto3 clients made on first use, from ``factory(service)`` or from the settings."""

    def __init__(self, settings: Settings, factory: ClientFactory | None = None) -> None:
        self._factory = factory or (lambda service: client(settings, service))
        self._cache: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = self._factory(service)
        return self._cache[service]


Finder = Callable[[Clients, Names, Settings], Iterator[Found]]


def account_id(clients: Clients) -> str:
    return clients("sts").get_caller_identity()["Account"]


def stack_names(settings: Settings, clients: Clients) -> Names:
    """The names of ``settings.stack`` in the account the clients reach."""
    return Names(settings.stack, account_id(clients), settings.region)


@dataclass(frozen=True)
class DeployContext:
    settings: Settings
    clients: Clients
    report: ChangeReport
    names: Names
    options: DeployOptions = field(default_factory=DeployOptions)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        settings: Settings,
        options: DeployOptions | None = None,
        *,
        progress: Progress | None = None,
        client_factory: ClientFactory | None = None,
    ) -> DeployContext:
        """A context for ``settings.stack``: asks the target for its account id (STS)."""
        clients = Clients(settings, client_factory)
        return cls(
            settings,
            clients,
            ChangeReport(progress),
            stack_names(settings, clients),
            options or DeployOptions(),
            stack_tags(settings.stack),
        )
