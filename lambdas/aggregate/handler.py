"""Lambda entry point of the Aggregate state (Workflow 2)."""

import swl_log
from aggregate import aggregate


def handler(event, context):
    result = aggregate(event)
    swl_log.log(
        "aggregate",
        image_id=result["image_id"],
        consensus=result["consensus"],
        contributing=result["contributing"],
        failed=[f["model"] for f in result["failed"]],
    )
    return result
