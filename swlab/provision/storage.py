"""Storage: the images bucket, the images table and the log groups — create, update, delete.

The bucket is private (public access blocked), SSE-S3 encrypted, tagged, and
TLS-only when ``options.tls_only`` (the default; the local cloud's deploys turn
it off, see :data:`swlab.provision.options.LOCAL_CLOUD_OPTIONS`). The table is
on-demand with key ``image_id``. Every log group is tagged and has a retention.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, Iterator, Mapping

from swlab.provision.awserrors import error_code, get_or_none, is_missing
from swlab.provision.changes import canonical, outcome
from swlab.provision.context import Clients, DeployContext, Found
from swlab.provision.naming import Names, is_ours
from swlab.settings import Settings

LOG_RETENTION_DAYS = 14
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def tls_only_policy(bucket: str) -> dict[str, Any]:
    arn = f"arn:aws:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


# -- bucket --------------------------------------------------------------------------------------


def ensure_bucket(ctx: DeployContext) -> str:
    """The images bucket: private (public access blocked), SSE-S3 by default, TLS-only if asked, tagged."""
    s3, bucket, names, created, updated = ctx.clients("s3"), ctx.names.bucket, ctx.names, False, []
    tls_only = ctx.options.tls_only
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:  # noqa: BLE001 — head_bucket's 404 is a ClientError with code "404"
        if not is_missing(exc):
            raise
        extra = (
            {} if names.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": names.region}}
        )
        s3.create_bucket(Bucket=bucket, **extra)
        created = True
    block = get_or_none(lambda: s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"])
    if block != PUBLIC_ACCESS_BLOCK:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
        updated.append("public access block")
    rules = (
        get_or_none(lambda: s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]) or []
    )
    if not any(r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == "AES256" for r in rules):
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        updated.append("encryption")
    policy = get_or_none(lambda: s3.get_bucket_policy(Bucket=bucket)["Policy"])
    if tls_only and (policy is None or canonical(policy) != canonical(tls_only_policy(bucket))):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only_policy(bucket)))
        updated.append("policy")
    elif not tls_only and policy is not None and canonical(policy) == canonical(tls_only_policy(bucket)):
        s3.delete_bucket_policy(Bucket=bucket)
        updated.append("policy removed")
    current = get_or_none(lambda: {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}) or {}
    if any(current.get(k) != v for k, v in ctx.tags.items()):
        s3.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in {**current, **ctx.tags}.items()]}
        )
        updated.append("tags")
    ctx.report.record("s3 bucket", bucket, *outcome(created, [] if created else updated))
    return bucket


def find_buckets(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    s3 = clients("s3")
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        if not name.startswith(f"{names.stack}-"):
            continue
        if name == names.bucket or is_ours(_bucket_tags(s3, name), names.stack):
            yield "s3 bucket", name, partial(delete_bucket, s3, name)


def _bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    except Exception as exc:  # noqa: BLE001 — no tags, or a bucket in another region / account
        if is_missing(exc) or error_code(exc) in ("AccessDenied", "PermanentRedirect", "AuthorizationHeaderMalformed"):
            return {}
        raise


def delete_bucket(s3: Any, bucket: str) -> None:
    """Empty the bucket (every object version and delete marker, unfinished uploads), then delete it."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        batch = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if batch:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        batch = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if batch:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=bucket)


# -- table ---------------------------------------------------------------------------------------


def ensure_table(ctx: DeployContext) -> str:
    """The images table: on-demand, key ``image_id`` (S), tagged."""
    ddb, table, tags = ctx.clients("dynamodb"), ctx.names.table, ctx.tags
    desc = get_or_none(lambda: ddb.describe_table(TableName=table)["Table"])
    created, updated = desc is None, []
    if created:
        ddb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "image_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "image_id", "KeyType": "HASH"}],
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    else:
        if desc["KeySchema"] != [{"AttributeName": "image_id", "KeyType": "HASH"}]:
            raise RuntimeError(f"table {table} exists with another key {desc['KeySchema']}; tear the stack down first")
        if desc.get("BillingModeSummary", {}).get("BillingMode") != "PAY_PER_REQUEST":
            ddb.update_table(TableName=table, BillingMode="PAY_PER_REQUEST")
            updated.append("billing mode")
        current = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=desc["TableArn"])["Tags"]}
        if any(current.get(k) != v for k, v in tags.items()):
            ddb.tag_resource(ResourceArn=desc["TableArn"], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            updated.append("tags")
    ctx.report.record("dynamodb table", table, *outcome(created, updated))
    return table


def find_tables(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    ddb = clients("dynamodb")
    for table in (t for page in ddb.get_paginator("list_tables").paginate() for t in page["TableNames"]):
        if not table.startswith(f"{names.stack}-"):
            continue
        arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
        tags = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])}
        if table == names.table or is_ours(tags, names.stack):
            yield "dynamodb table", table, partial(delete_table, ddb, table)


def delete_table(ddb: Any, table: str) -> None:
    ddb.delete_table(TableName=table)
    ddb.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 2, "MaxAttempts": 90})


# -- log groups ----------------------------------------------------------------------------------


def ensure_log_group(ctx: DeployContext, name: str) -> str:
    """A tagged log group with a retention (so teardown finds it and it does not grow forever)."""
    logs, tags = ctx.clients("logs"), ctx.tags
    found = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    created, updated = not found, []
    if created:
        try:
            logs.create_log_group(logGroupName=name, tags=tags)
        except Exception as exc:  # noqa: BLE001 — created meanwhile (e.g. by the service itself)
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
            created = False
    arn = found[0]["arn"] if found else None
    if not created and found:
        current = logs.list_tags_for_resource(resourceArn=log_group_arn(found[0]))["tags"]
        if any(current.get(k) != v for k, v in tags.items()):
            logs.tag_resource(resourceArn=log_group_arn(found[0]), tags=tags)
            updated.append("tags")
    if not found or found[0].get("retentionInDays") != LOG_RETENTION_DAYS:
        logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)
        updated.append("retention")
    ctx.report.record("log group", name, *outcome(created, updated))
    if arn is None:
        arn = next(
            g["arn"]
            for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            if g["logGroupName"] == name
        )
    return arn


def log_group_arn(group: Mapping[str, Any]) -> str:
    """The log group's ARN without the trailing ``:*`` that describe_log_groups adds."""
    return group.get("logGroupArn") or group["arn"].removesuffix(":*")


def delete_log_group(clients: Clients, name: str) -> None:
    clients("logs").delete_log_group(logGroupName=name)


def find_log_groups(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    """Tagged groups, and untagged ``/aws/lambda/<fn>`` groups of our (still listed) functions."""
    logs = clients("logs")
    ours = {f"/aws/lambda/{n}" for n in _function_names(clients, names)}
    for prefix in (f"/aws/lambda/{names.stack}-", f"/aws/vendedlogs/states/{names.stack}-"):
        pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix)
        for group in (g for page in pages for g in page["logGroups"]):
            name = group["logGroupName"]
            if (
                name in ours
                or name == names.state_machine_log_group
                or is_ours(logs.list_tags_for_resource(resourceArn=log_group_arn(group)).get("tags"), names.stack)
            ):
                yield "log group", name, partial(logs.delete_log_group, logGroupName=name)


def _function_names(clients: Clients, names: Names) -> set[str]:
    """The ``<stack>-`` functions listed now (their log groups may be untagged: the service made them)."""
    lam = clients("lambda")
    return {
        f["FunctionName"]
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
        if f["FunctionName"].startswith(f"{names.stack}-")
    }
