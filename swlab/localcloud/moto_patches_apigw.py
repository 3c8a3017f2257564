"""API Gateway control-plane fixes of moto 5.2.5, applied from :func:`moto_patches.apply`.

Each keeps moto's answers otherwise and has a sentinel test in tests/functional/test_moto_patches.py
that fails when upstream no longer needs it.

==============================  ===========================================================
patch                           why
==============================  ===========================================================
CreateRestApi binaryMediaTypes  moto's ``create_rest_api`` response handler does not pass
                                ``binaryMediaTypes`` to the backend: an API created with
                                them has none, so the proxy data plane would never decode a
                                base64 response (:mod:`swlab.localcloud.apigw`).
UpdateRestApi add/remove        AWS names the media type in the path
                                (``{"op": "add", "path": "/binaryMediaTypes/image~1png"}``);
                                moto appends the operation's ``value`` (none: ``""``) instead.
==============================  ===========================================================
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

_TYPES_PATH = "/binaryMediaTypes/"


def apply(originals: dict[str, Callable[..., Any]]) -> None:
    """Apply every patch once; ``originals`` receives moto's functions (for the sentinel tests)."""
    _patch_create_rest_api(originals)
    _patch_binary_media_type_operations(originals)


def _patch_create_rest_api(originals: dict[str, Callable[..., Any]]) -> None:
    from moto.apigateway.responses import APIGatewayResponse

    original = APIGatewayResponse.create_rest_api
    originals["apigateway.create_rest_api"] = original

    @functools.wraps(original)
    def create_rest_api(self: Any) -> Any:
        status, headers, body = original(self)
        types = self._get_param("binaryMediaTypes")
        if status != 200 or not isinstance(types, list) or not types:
            return status, headers, body
        api = self.backend.get_rest_api(json.loads(body)["id"])
        if not api.binaryMediaTypes:
            api.binaryMediaTypes = [str(t) for t in types]
        return status, headers, json.dumps(api.to_dict())

    APIGatewayResponse.create_rest_api = create_rest_api  # type: ignore[method-assign]


def _patch_binary_media_type_operations(originals: dict[str, Callable[..., Any]]) -> None:
    from moto.apigateway.models import RestAPI

    original = RestAPI.apply_patch_operations
    originals["apigateway.RestAPI.apply_patch_operations"] = original

    @functools.wraps(original)
    def apply_patch_operations(self: Any, patch_operations: list[dict[str, Any]]) -> None:
        rest = []
        for op in patch_operations:
            path, kind = op.get("path", ""), op.get("op")
            if path.startswith(_TYPES_PATH) and kind in ("add", "remove"):
                media_type = path[len(_TYPES_PATH) :].replace("~1", "/").replace("~0", "~")
                if kind == "add" and media_type not in self.binaryMediaTypes:
                    self.binaryMediaTypes.append(media_type)
                elif kind == "remove" and media_type in self.binaryMediaTypes:
                    self.binaryMediaTypes.remove(media_type)
            else:
                rest.append(op)
        original(self, rest)

    RestAPI.apply_patch_operations = apply_patch_operations  # type: ignore[method-assign]
