"""Raise an exception from the handler."""


class ProbeError(ValueError):
    pass


def handler(event, context):
    print("raise probe about to fail")
    raise ProbeError(event.get("message", "boom"))
