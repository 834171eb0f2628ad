"""``links`` of a message's context: the review and rewards pages signed when first read.

Every context carries every link a template might show, but a template shows a few of them:
the delivery check-in shows neither the order's review page nor the customer's rewards page.
Signing both for every message was about a quarter of building its context. As ``ScoredLinks``
does for the answer links, ``MessageLinks`` signs each of the two the first time anything (a
template, a preview, a test) reads it, and keeps it; its values are the strings the eager
dict held, so templates see no difference, and it cannot be changed (a template cannot alter
a link of its message).

The answer links (``survey``, ``nps``) are made when first read too: a template shows one
list at most. Made for every message (a ``ScoredLinks`` each, passed in by keywords), they
were most of the 17K instructions (callgrind) that this and positional order lines took off
the 129K of building a context.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from postpurchase.messages.order_view import ReviewPage
from postpurchase.messages.sandbox import keyed_view
from postpurchase.messages.scored_links import ScoredLinks
from postpurchase.messages.tokens import LinkClaim, Purpose, sign

if TYPE_CHECKING:  # context builds on this module; the profile is only a type here
    from postpurchase.messages.context import ShopProfile

# In the order the dict held them: what a template iterating over ``links`` sees.
_KEYS = ("unsubscribe", "survey", "review", "nps", "loyalty", "rewards", "shop")


@keyed_view
class MessageLinks(Mapping[str, Any]):
    """unsubscribe, survey, review, nps, loyalty, rewards and shop (context module doc)."""

    __slots__ = ("_customer_id", "_links", "_review_page", "_shop", "_touchpoint_id")

    # Positional: one is made for every message, and a class called with keywords has them
    # gathered into a dict first.
    def __init__(
        self,
        shop: ShopProfile,
        customer_id: int,
        touchpoint_id: int,
        unsubscribe: str,
        review_page: ReviewPage,
    ) -> None:
        self._shop = shop
        self._customer_id = customer_id
        self._touchpoint_id = touchpoint_id
        self._review_page = review_page
        # the links made so far; the others join them when first read
        self._links: dict[str, Any] = {
            "unsubscribe": unsubscribe,
            "loyalty": shop.loyalty_page_url,
            "shop": shop.url,
        }

    def __getitem__(self, key: str) -> Any:
        try:
            return self._links[key]
        except KeyError:
            pass
        value: Any
        if key == "survey":
            value = self._scored("/s/", "survey", range(1, 6))
        elif key == "nps":
            value = self._scored("/n/", "nps", range(11))
        elif key == "review":
            value = self._review_page.url
        elif key == "rewards":
            # The customer's own rewards page (postpurchase.rewards.page): signed, no login.
            claim = LinkClaim("rewards", self._customer_id, self._touchpoint_id)
            value = f"{self._shop.public_base_url}/rewards/" + sign(self._shop.signing_key, claim)
        else:
            raise KeyError(key)
        self._links[key] = value
        return value

    def _scored(self, path: str, purpose: Purpose, scores: range) -> ScoredLinks:
        shop = self._shop
        return ScoredLinks(
            shop.signing_key,
            shop.public_base_url + path,
            purpose,
            self._customer_id,
            self._touchpoint_id,
            scores,
        )

    def __contains__(self, key: object) -> bool:
        return key in _KEYS

    def __iter__(self) -> Iterator[str]:
        return iter(_KEYS)

    def __len__(self) -> int:
        return len(_KEYS)

    def __repr__(self) -> str:
        return repr(dict(self))
