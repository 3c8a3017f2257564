"""Fail at import time: the module imports a package that is not in the zip."""

import swlab_probe_module_that_does_not_exist  # noqa: F401


def handler(event, context):
    return {"unreachable": True}
