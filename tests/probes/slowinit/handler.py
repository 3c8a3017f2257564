"""Sleep ``INIT_SLEEP_S`` seconds while importing (a slow init phase), then answer with the time left."""

import os
import time

time.sleep(float(os.environ.get("INIT_SLEEP_S", "0")))


def handler(event, context):
    return {"remaining_ms": context.get_remaining_time_in_millis()}
