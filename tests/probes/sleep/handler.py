"""Sleep for event["seconds"] (to run past the function's timeout)."""

import time


def handler(event, context):
    print("sleep probe sleeping", event.get("seconds", 10))
    time.sleep(float(event.get("seconds", 10)))
    return {"slept": event.get("seconds", 10)}
