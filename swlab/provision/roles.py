"""IAM roles: one per function, one for Step Functions, one for API Gateway — create, update, delete.

Each role is trusted by one service (:func:`swlab.provision.iam.trust_policy`,
the one trust policy) and holds one inline policy named like the role, built
by :mod:`swlab.provision.iam`.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, Iterator, Mapping

from swlab.provision import iam
from swlab.provision.awserrors import get_or_none
from swlab.provision.changes import canonical, outcome
from swlab.provision.context import Clients, DeployContext, Found
from swlab.provision.naming import Names, is_ours
from swlab.settings import Settings


def stack_resources(names: Names) -> iam.StackResources:
    return iam.StackResources(names.stack, names.account_id, names.region, names.bucket, names.table)


def ensure_role(ctx: DeployContext, name: str, service: str, policy: Mapping[str, Any], description: str = "") -> str:
    """A role trusted by ``service`` (``lambda``, ``states`` or ``apigateway``) with one inline policy
    (named like the role); returns its ARN."""
    client, tags, trust = ctx.clients("iam"), ctx.tags, iam.trust_policy(service)
    role = get_or_none(lambda: client.get_role(RoleName=name)["Role"])
    created, updated = role is None, []
    if created:
        role = client.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=description,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )["Role"]
    else:
        if canonical(role["AssumeRolePolicyDocument"]) != canonical(trust):
            client.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            updated.append("trust policy")
        current = {t["Key"]: t["Value"] for t in client.list_role_tags(RoleName=name)["Tags"]}
        if any(current.get(k) != v for k, v in tags.items()):
            client.tag_role(RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            updated.append("tags")
    existing = get_or_none(lambda: client.get_role_policy(RoleName=name, PolicyName=name)["PolicyDocument"])
    if existing is None or canonical(existing) != canonical(policy):
        client.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
        updated.append("policy")
    ctx.report.record("iam role", name, *outcome(created, [] if created else updated))
    return role["Arn"]


def delete_role(client: Any, name: str) -> None:
    """Delete a role with its inline and attached policies."""
    for policy in client.list_role_policies(RoleName=name)["PolicyNames"]:
        client.delete_role_policy(RoleName=name, PolicyName=policy)
    for policy in client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        client.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    client.delete_role(RoleName=name)


def find_roles(clients: Clients, names: Names, settings: Settings) -> Iterator[Found]:
    """The stack's roles: the fixed names, and any ``<stack>-`` role tagged with the stack."""
    client = clients("iam")
    fixed = {names.states_role, names.apigw_role}
    for role in (r for page in client.get_paginator("list_roles").paginate() for r in page["Roles"]):
        name = role["RoleName"]
        if not name.startswith(f"{names.stack}-"):
            continue
        tags = {t["Key"]: t["Value"] for t in client.list_role_tags(RoleName=name)["Tags"]}
        if name in fixed or is_ours(tags, names.stack):
            yield "iam role", name, partial(delete_role, client, name)
