"""The local cloud's request-path speed-ups of moto 5.2.5 (S3 first), applied from :func:`moto_patches.apply`.

Measured on this project's 2-core machine with ``swlab.bench.localcloud_s3`` (a 128 KiB
PutObject/GetObject through boto3) and a cProfile of the server's dispatch. Each patch keeps
moto's behaviour (same answers, same errors) and has a sentinel test in
tests/functional/test_moto_patches.py that fails when upstream no longer needs it.

==========================  ===============================================================
patch                       why
==========================  ===============================================================
moto module list cached     ``DomainDispatcherApplication.get_backend_for_host`` asks
                            ``moto.backends.list_of_moto_modules()`` for every request it
                            routes (S3, DynamoDB, Step Functions, Logs ...): a listdir and
                            ~180 ``isdir`` stats of moto's package, under the dispatcher's
                            global lock — about 1.7 ms of the ~2.5 ms moto spent serving a
                            128 KiB PutObject. The package does not change while the server
                            runs; the list is read once.
==========================  ===============================================================
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable


def apply(originals: dict[str, Callable[..., Any]]) -> None:
    """Apply every patch once; ``originals`` receives moto's functions (for the sentinel tests)."""
    _cache_moto_module_list(originals)


def _cache_moto_module_list(originals: dict[str, Callable[..., Any]]) -> None:
    """moto 5.2.5: ``list_of_moto_modules`` scans moto's package directory on every call."""
    from moto import backends

    original = backends.list_of_moto_modules
    originals["list_of_moto_modules"] = original
    modules = tuple(original())

    @functools.wraps(original)
    def list_of_moto_modules() -> Iterable[str]:
        return iter(modules)

    backends.list_of_moto_modules = list_of_moto_modules
