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
ranged GET reads its range  ``S3Response.get_object`` returns ``key.value`` — the whole object
                            read from its spooled temporary file and copied — and
                            ``_handle_range_header`` then slices the range out of it. The
                            ONNX model downloads GET 64 MB ranges, so a 100 MB object was read
                            whole for each. While a ranged ``get_object`` runs, ``key.value``
                            is a :class:`ObjectView` (its ``len`` is the object's size, a slice
                            reads only those bytes); moto's own range logic (206, Content-Range,
                            416 ``InvalidRange``, a multi-range or malformed header answered
                            200 with the whole object) is unchanged, and whatever view is left
                            unsliced is read whole before it leaves ``key_response``. Measured
                            (boto3 GetObject of a 1 MiB range of a 100 MiB object, 20 each,
                            servers alternating, load average 4.5-6.4): p50 111.9 ms before,
                            10.7 ms after.
==========================  ===============================================================
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Iterable

_ranged = threading.local()  # .active: a ranged get_object runs on this thread


def apply(originals: dict[str, Callable[..., Any]]) -> None:
    """Apply every patch once; ``originals`` receives moto's functions (for the sentinel tests)."""
    _cache_moto_module_list(originals)
    _ranged_get_reads_its_range(originals)


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


class ObjectView:
    """A stored object's bytes, read on demand: ``len`` is its size, ``view[a:b]`` reads only that range."""

    def __init__(self, key: Any) -> None:
        self.key = key

    def __len__(self) -> int:
        return int(self.key.size)

    def __getitem__(self, item: slice) -> bytes:
        if not isinstance(item, slice) or item.step not in (None, 1):
            raise TypeError("ObjectView supports contiguous slices only")
        start, stop, _ = item.indices(len(self))
        with self.key.lock:
            buffer = self.key._value_buffer
            buffer.seek(start)
            return bytes(buffer.read(max(0, stop - start)))

    def read_all(self) -> bytes:
        return self[:]


def _ranged_get_reads_its_range(originals: dict[str, Callable[..., Any]]) -> None:
    """moto 5.2.5: a GET with ``Range`` reads the whole object, then slices the range out of it."""
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    value: property = FakeKey.__dict__["value"]  # the property object itself (mypy sees the getter's type)
    read_whole: Callable[[Any], bytes] = value.fget  # type: ignore[assignment]  # a getter: never None
    get_object, key_response = S3Response.get_object, S3Response.key_response
    originals["s3.FakeKey.value"] = read_whole
    originals["s3.S3Response.get_object"] = get_object
    originals["s3.S3Response.key_response"] = key_response

    def value_or_view(key: Any) -> Any:
        return ObjectView(key) if getattr(_ranged, "active", False) else read_whole(key)

    @functools.wraps(get_object)
    def ranged_get_object(self: Any) -> Any:
        # the condition under which moto's key_response hands the answer to _handle_range_header
        # (status 200 aside); a partNumber GET answers 206 itself, so it keeps the whole value
        if not self.headers.get("range") or "partNumber" in self.querystring:
            return get_object(self)
        _ranged.active = True
        try:
            return get_object(self)
        finally:
            _ranged.active = False

    @functools.wraps(key_response)
    def key_response_bytes(self: Any, *args: Any, **kwargs: Any) -> Any:
        response: Any = key_response(self, *args, **kwargs)
        if isinstance(response, tuple) and len(response) == 3 and isinstance(response[2], ObjectView):
            status, headers, body = response
            return status, headers, body.read_all()  # a Range moto answers with the whole object (200)
        return response

    setattr(FakeKey, "value", property(value_or_view, value.fset))
    S3Response.get_object = ranged_get_object  # type: ignore[method-assign]
    S3Response.key_response = key_response_bytes  # type: ignore[method-assign]
