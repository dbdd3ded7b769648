#!/usr/bin/env python3
"""Drive the real PyPI `bigcommerce` SDK through bcgate over HTTPS.

Run by tests/it/python_sdk.rs with the venv's python (scripts/install-test-deps),
in the environment docs/sdks.md's python recipe sets up:
  BC_API_ENDPOINT     host:port of bcgate's HTTPS listener (the SDK adds https://)
  REQUESTS_CA_BUNDLE  the CA that signed bcgate's certificate
  BCGATE_KEY          the service's bcgate key, given to the SDK as its "access token"
  BC_STORE_HASH       the store hash (or alias) the SDK puts in /stores/{hash}/

The lines between the recipe markers are docs/sdks.md's python recipe,
character for character (tests/it/python_sdk.rs checks). Prints one JSON object
on the last line of stdout; exits 1 on any unexpected error.
"""
import json
import os
import sys

from bigcommerce.exception import ClientRequestException


def plain(value):
    """SDK resources are dict subclasses carrying a `_connection`; drop private keys."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def main():
    # recipe: python
    import os

    from bigcommerce.api import BigcommerceApi

    api = BigcommerceApi(
        client_id="bcgate",  # any value: the SDK wants one; bcgate drops X-Auth-Client
        store_hash=os.environ["BC_STORE_HASH"],  # the store's hash or its bcgate alias
        access_token=os.environ["BCGATE_KEY"],  # this service's bcgate key, not the store token
    )
    products = api.Products.all(limit=2)
    # end recipe

    order = api.Orders.get(1)
    v3 = api.connection.make_request(
        "GET",
        "https://%s/stores/%s/v3/catalog/products"
        % (os.environ["BC_API_ENDPOINT"], os.environ["BC_STORE_HASH"]),
        params={"limit": 1},
    )
    rate_limit = dict(api.connection.rate_limit)

    denied = None
    try:
        api.Orders.create(customer_id=0, products=[])
    except ClientRequestException as exc:
        denied = str(exc)
    # The v2 catalog's writes need the modify-level Products scope.
    denied_product = None
    try:
        api.Products.create(name="Denied T-shirt", type="physical", price=1, weight=1)
    except ClientRequestException as exc:
        denied_product = str(exc)

    print(
        json.dumps(
            {
                "products": plain(products),
                "order": plain(order),
                "v3": plain(v3),
                "rate_limit": rate_limit,
                "denied": denied,
                "denied_product": denied_product,
            }
        )
    )


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # report, then fail
        print("sdk_check failed: %r" % (exc,), file=sys.stderr)
        sys.exit(1)
