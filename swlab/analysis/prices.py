"""Prices for the cost model: the dated offline table ``swlab/data/prices.json`` (with sources),
or on target aws the AWS Price List API (:func:`refresh_prices`, ``pricing`` client)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from swlab.settings import Settings, client

PRICES_PATH = Path(__file__).resolve().parents[1] / "data" / "prices.json"


def prices_for(settings: Settings, use_price_list_api: bool = False) -> dict[str, Any]:
    """The prices a run is costed with: the offline table, refreshed from the Price List API when
    asked on target aws (the API exists only there)."""
    table = load_prices()
    if use_price_list_api and settings.target == "aws":
        table = refresh_prices(client(settings, "pricing"), settings.region, base=table)
    return table


def load_prices(path: str | Path | None = None) -> dict[str, Any]:
    """The dated offline price table (``prices``, ``free_tier_per_month``, ``sources``, ``as_of``)."""
    return json.loads(Path(path or PRICES_PATH).read_text())


# ---- Price List API (target aws) --------------------------------------------------------------

# price key → (ServiceCode, usagetype without region prefix, multiplier from the API's unit price)
PRICE_LIST_USAGE = {
    "lambda_x86_64_usd_per_gb_s": ("AWSLambda", "Lambda-GB-Second", 1),
    "lambda_arm64_usd_per_gb_s": ("AWSLambda", "Lambda-GB-Second-ARM", 1),
    "lambda_usd_per_million_requests": ("AWSLambda", "Request", 1e6),
    "sfn_standard_usd_per_1k_transitions": ("AmazonStates", "StateTransition", 1e3),
    "apigateway_rest_usd_per_million_requests": ("AmazonApiGateway", "ApiGatewayRequest", 1e6),
    "dynamodb_usd_per_million_write_request_units": ("AmazonDynamoDB", "WriteRequestUnits", 1e6),
    "dynamodb_usd_per_million_read_request_units": ("AmazonDynamoDB", "ReadRequestUnits", 1e6),
    "s3_put_usd_per_1k_requests": ("AmazonS3", "Requests-Tier1", 1e3),
    "s3_get_usd_per_1k_requests": ("AmazonS3", "Requests-Tier2", 1e3),
}


def refresh_prices(pricing_client: Any, region: str = "us-east-1", base: dict | None = None) -> dict[str, Any]:
    """Prices from the AWS Price List API where found, the offline table elsewhere.

    The result's ``source_kind`` says "AWS Price List API" and ``refreshed_keys`` lists the
    prices that came from it; the first (lowest-volume) tier is taken.
    """
    table = json.loads(json.dumps(base or load_prices()))
    found: dict[str, float] = {}
    for service in sorted({v[0] for v in PRICE_LIST_USAGE.values()}):
        products = _price_list_products(pricing_client, service, region)
        for key, (svc, usage, mult) in PRICE_LIST_USAGE.items():
            if svc == service and (price := _first_tier_usd(products, usage)) is not None:
                found[key] = price * mult
    table["prices"].update(found)
    table.update(
        source_kind="AWS Price List API" if found else table.get("source_kind", "offline table"),
        as_of=datetime.now(timezone.utc).date().isoformat() if found else table.get("as_of"),
        refreshed_keys=sorted(found),
        region=region,
    )
    return table


def _price_list_products(pricing_client: Any, service: str, region: str) -> list[dict]:
    products, token = [], None
    while True:
        kwargs = {
            "ServiceCode": service,
            "FormatVersion": "aws_v1",
            "MaxResults": 100,
            "Filters": [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}],
        }
        if token:
            kwargs["NextToken"] = token
        page = pricing_client.get_products(**kwargs)
        products += [json.loads(p) if isinstance(p, str) else p for p in page.get("PriceList", [])]
        token = page.get("NextToken")
        if not token:
            return products


def _first_tier_usd(products: list[dict], usage: str) -> float | None:
    """First-tier USD price of ``usage`` (bare, or with a regional prefix such as ``USE1-``; never the
    ``Global-`` free-tier usage types, which list a price of zero)."""
    pattern = re.compile(rf"^(?:[A-Z]{{2,4}}\d-)?{re.escape(usage)}$")
    for prod in products:
        ut = prod.get("product", {}).get("attributes", {}).get("usagetype", "")
        if not pattern.match(ut):
            continue
        for term in prod.get("terms", {}).get("OnDemand", {}).values():
            dims = sorted(term.get("priceDimensions", {}).values(), key=lambda d: float(d.get("beginRange", 0)))
            if dims and (usd := dims[0].get("pricePerUnit", {}).get("USD")) is not None:
                return float(usd)
    return None
