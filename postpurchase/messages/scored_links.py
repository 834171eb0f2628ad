"""The scored answer links of a message (survey 1-5, NPS 0-10), signed when first read.

Every context carries both lists, but a template shows one of them at most: signing all
sixteen links for every message was half the cost of building its context. ``ScoredLinks``
is a read-only sequence of ``{"score", "url"}`` dicts, as the lists were, that signs each
link the first time a template (or anything else) reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from postpurchase.messages.tokens import Purpose, sign_score


class ScoredLinks(Sequence[dict[str, Any]]):
    """``{"score": n, "url": base + sign(claim for n)}`` for each score in ``scores``."""

    # Slots (those of Sequence are empty): no __dict__ for each of the ones messages make.
    __slots__ = (
        "_base",
        "_customer_id",
        "_key",
        "_purpose",
        "_scores",
        "_signed",
        "_touchpoint_id",
    )

    def __init__(
        self,
        key: bytes,
        base: str,
        purpose: Purpose,
        customer_id: int,
        touchpoint_id: int,
        scores: range,
    ) -> None:
        self._key = key
        self._base = base
        self._purpose = purpose
        self._customer_id = customer_id
        self._touchpoint_id = touchpoint_id
        self._scores = scores
        self._signed: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._scores)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._link(self._scores[index])  # IndexError past the end, as a list

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # Sequence's own asks for each index in turn until one raises IndexError
        return map(self._link, self._scores)

    def _link(self, score: int) -> dict[str, Any]:
        link = self._signed.get(score)
        if link is None:
            token = sign_score(
                self._key, self._purpose, self._customer_id, self._touchpoint_id, score
            )
            link = self._signed[score] = {"score": score, "url": self._base + token}
        return link
