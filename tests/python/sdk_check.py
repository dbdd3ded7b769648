#!/usr/bin/env python3
"""Drive the real PyPI `bigcommerce` SDK through bcgate over HTTPS.

Run by tests/python_sdk.rs. Environment:
  BCGATE_HOST         host:port of bcgate's HTTPS listener (the SDK hard-codes https://)
  BCGATE_KEY          the service's bcgate key, given to the SDK as its "access token"
  BC_STORE_HASH       the store hash (or alias) the SDK puts in /stores/{hash}/
  REQUESTS_CA_BUNDLE  the test CA, so `requests` trusts bcgate's certificate

Prints one JSON object on the last line of stdout. Exits 3 if the SDK is
not installed, 1 on any unexpected error.
"""
import json
import os
import sys

try:
    import bigcommerce  # noqa: F401
    from bigcommerce.api import BigcommerceApi
    from bigcommerce.exception import ClientRequestException
except ImportError:
    print("skipping: python bigcommerce SDK not installed (pip install bigcommerce)")
    sys.exit(3)


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
    host = os.environ["BCGATE_HOST"]
    store = os.environ["BC_STORE_HASH"]
    # The SDK reads its API host from BC_API_ENDPOINT when the client is built.
    os.environ["BC_API_ENDPOINT"] = host
    api = BigcommerceApi(
        client_id="sdk-client-id-not-a-secret",
        store_hash=store,
        access_token=os.environ["BCGATE_KEY"],
    )

    products = api.Products.all(limit=2)
    order = api.Orders.get(1)
    v3 = api.connection.make_request(
        "GET",
        "https://%s/stores/%s/v3/catalog/products" % (host, store),
        params={"limit": 1},
    )
    rate_limit = dict(api.connection.rate_limit)

    denied = None
    try:
        api.Orders.create(customer_id=0, products=[])
    except ClientRequestException as exc:
        denied = str(exc)

    print(
        json.dumps(
            {
                "products": plain(products),
                "order": plain(order),
                "v3": plain(v3),
                "rate_limit": rate_limit,
                "denied": denied,
            }
        )
    )


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # report, then fail
        print("sdk_check failed: %r" % (exc,), file=sys.stderr)
        sys.exit(1)
