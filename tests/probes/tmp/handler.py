"""Look at /tmp as the function sees it: the temp directory, what is in it, and write event["write_mb"] MB there."""

import os
import sys
import tempfile
import time


def handler(event, context):
    tmp = tempfile.gettempdir()
    before = sorted(os.listdir(tmp))
    with open(os.path.join(tmp, event.get("marker", "marker")), "w") as fh:
        fh.write(context.aws_request_id)
    with tempfile.NamedTemporaryFile(delete=False) as fh:
        for _ in range(int(event.get("write_mb", 0))):
            fh.write(b"\x01" * (1024 * 1024))
            fh.flush()
            os.fsync(fh.fileno())
        written = fh.name
    time.sleep(float(event.get("hold_s", 0)))
    return {
        "tmp": tmp,
        "before": before,
        "written": written,
        "own_vars": sorted(k for k in os.environ if k.startswith("SWLAB")),
        "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
        "task_root_pycache": os.path.exists(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "__pycache__")),
        "dont_write_bytecode": sys.flags.dont_write_bytecode,
    }
