"""The platforms' HTTP client: its event loop's thread, closed, reopened and after a fork."""

from __future__ import annotations

import os

from fakes.fake_shopify_admin import ACCESS_TOKEN, API_VERSION

from postpurchase.rewards.shopify_discounts import ShopifyDiscounts


def _issuer(shopify):
    return ShopifyDiscounts(
        "northwind.myshopify.com",
        ACCESS_TOKEN,
        api_version=API_VERSION,
        admin_url=shopify.url,
        timeout=2.0,
    )


def test_a_closed_client_reopens_at_its_next_call(shopify):
    issuer = _issuer(shopify)
    assert issuer.find("PP-NONE-SUCH-00") is None
    issuer.close()
    assert issuer.find("PP-NONE-SUCH-00") is None  # a new loop and connections
    issuer.close()
    issuer.close()  # closing twice is harmless
    assert len(shopify.requests) == 2


def test_a_forked_process_calls_through_a_loop_of_its_own(shopify):
    # The child inherits the parent's loop but not the thread running it: waiting on that
    # loop would hang; the child starts its own.
    issuer = _issuer(shopify)
    assert issuer.find("PP-NONE-SUCH-00") is None
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's outcome is its exit status)
        try:
            found = issuer.find("PP-NONE-SUCH-00")
            issuer.close()
            os._exit(0 if found is None else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert issuer.find("PP-NONE-SUCH-00") is None  # the parent's loop still serves it
    issuer.close()
    assert len(shopify.requests) == 3
