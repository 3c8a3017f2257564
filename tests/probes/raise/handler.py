"""Raise an exception from the handler (``event["error_type"]`` names its class, as the errorType)."""


class ProbeError(ValueError):
    pass


def handler(event, context):
    print("raise probe about to fail")
    if "error_type" in event:  # e.g. "Sandbox.Timedout": the payload AWS's runtime gives a timed-out invoke
        raise type(event["error_type"], (Exception,), {})(event.get("message", "boom"))
    raise ProbeError(event.get("message", "boom"))
