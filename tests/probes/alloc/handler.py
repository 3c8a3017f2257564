"""Allocate event["mb"] MB of resident memory, 8 MB at a time, and hold it."""

import time

CHUNK = 8 * 1024 * 1024


def handler(event, context):
    held = []
    for _ in range(int(event.get("mb", 256)) // 8):
        held.append(bytearray(b"\x01") * CHUNK)
        time.sleep(0.005)
    time.sleep(float(event.get("hold_s", 0.3)))
    return {"allocated_mb": 8 * len(held)}
