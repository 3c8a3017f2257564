"""Echo the event, the context and the environment the runtime set up."""

import importlib.util
import os
import sys

ENV_NAMES = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "_HANDLER",
    "TZ",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "PROBE_VAR",
    "AWS_REGION_OVERRIDE_PROBE",
)
MODULES = ("boto3", "botocore", "awslambdaric", "pandas", "moto", "swlab", "torch")
COLD = {"value": True}


def handler(event, context):
    print(f"echo probe got {len(str(event))} characters")
    cold, COLD["value"] = COLD["value"], False
    if "pad_bytes" in event:  # a response of (at least) this size
        return {"pad": "x" * int(event["pad_bytes"])}
    return {
        "event": event,
        "cold": cold,
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_time_in_millis": context.get_remaining_time_in_millis(),
        },
        "env": {name: os.environ.get(name) for name in ENV_NAMES},
        "importable": {name: importlib.util.find_spec(name) is not None for name in MODULES},
        "sys_path0": sys.path[0],
        "python": "%d.%d" % sys.version_info[:2],
    }
