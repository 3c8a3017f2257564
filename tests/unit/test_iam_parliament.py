"""Every IAM policy the deploy generates passes ``parliament`` (PyPI, pinned in the test extra) with no
finding above LOW: each function's role, the state machine's role and the API Gateway role (trust policies
are resource policies, which parliament 1.6.4 cannot audit: it reports them MALFORMED for lacking a
Resource). Parliament's own auditors are the gate (``parliament`` on the command line); its community
auditors are also run and may report only the one finding listed in ``EXPECTED_COMMUNITY`` with its reason.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from swlab.provision import iam

pytestmark = pytest.mark.unit

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # parliament 1.6.4 imports pkg_resources
    from parliament import analyze_policy_string, config

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
RES = iam.StackResources("lab", "123456789012", "us-east-1", "lab-images-123456789012-us-east-1", "lab-images")
ABOVE_LOW = {"MEDIUM", "HIGH", "CRITICAL"}
# The state machine's log delivery needs logs:PutResourcePolicy on "*" (AWS's documented policy for
# Step Functions logging to CloudWatch Logs: those actions support no resource-level permission).
EXPECTED_COMMUNITY = {("state machine", "PERMISSIONS_MANAGEMENT_ACTIONS")}


def policies() -> dict[str, dict]:
    out = {f"function {name}": policy for name, policy in iam.function_policies(LAMBDAS, RES).items()}
    out["state machine"] = iam.state_machine_policy(RES, iam.function_policies(LAMBDAS, RES))
    out["api gateway"] = iam.api_gateway_policy(RES.state_machine_arn("lab-classify"))
    return out


def findings(policy: dict, community: bool) -> list[tuple[str, str, str]]:
    analysed = analyze_policy_string(json.dumps(policy), include_community_auditors=community)
    return [
        (f.issue, str(config.get(f.issue, {}).get("severity", "UNKNOWN")).upper(), str(f.detail))
        for f in analysed.findings
    ]


@pytest.mark.parametrize("name", sorted(policies()))
def test_policy_has_no_parliament_finding_above_low(name):
    policy = policies()[name]
    assert [f for f in findings(policy, community=False) if f[1] in ABOVE_LOW | {"UNKNOWN"}] == []
    community = [f for f in findings(policy, community=True) if f[1] in ABOVE_LOW | {"UNKNOWN"}]
    assert {(name, f[0]) for f in community} <= EXPECTED_COMMUNITY, community


def test_parliament_does_flag_a_bad_policy():
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "*"}]}
    assert findings(bad, community=False)
