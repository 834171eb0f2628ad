"""Simulated customer answers for the ``make run`` demo, labelled as such in the summary.

The demo's customers do not click anything, so after the feed is processed a few of them
"answer" through the real pages, as a browser would (GET the page, POST its form): delivery
check-ins (1-5), NPS (0-10, for the planned survey) and reviews of their orders. The mix is
seeded, and includes unhappy answers, so the complaint loop shows too. Nothing here is used
outside the demo.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.messages.tokens import LinkClaim, sign
from postpurchase.store.models import Touchpoint

_HIDDEN = re.compile(r'type="hidden" name="(product-\d+)" value="([^"]+)"')
_REVIEW_TEXTS = [
    ("Exactly as described", "Good quality, arrived well packed. Would buy again."),
    ("Solid", "Does the job. The colour is a little darker than on the photos."),
    ("Disappointed", "Stopped working after a week, I expected better for the price."),
    ("Love it", "Comfortable and well made, my second one from this shop."),
]


@dataclass
class SimulatedAnswers:
    checkins: int = 0
    nps: int = 0
    reviews: int = 0
    refused: int = 0

    def line(self) -> str:
        return (
            f"simulated answers (demo only): {self.checkins} check-ins, {self.nps} NPS, "
            f"{self.reviews} review pages"
        ) + (f", {self.refused} refused" if self.refused else "")


def _touchpoints(session: Session, campaign: str, limit: int) -> list[tuple[int, int]]:
    rows = session.execute(
        select(Touchpoint.customer_id, Touchpoint.id)
        .where(Touchpoint.campaign_id == campaign, Touchpoint.step == 0)
        .order_by(Touchpoint.id)
        .limit(limit)
    ).all()
    return [(customer, touchpoint) for customer, touchpoint in rows]


Targets = dict[str, list[tuple[int, int]]]


def answer_targets(session: Session, *, per_kind: int = 6) -> Targets:
    """(customer, touchpoint) of the first ``per_kind`` check-ins, NPS surveys and review
    requests. Read first, in a session closed before answering: the app must be free to
    write (SQLite has one writer)."""
    return {
        campaign: _touchpoints(session, campaign, per_kind)
        for campaign in ("delivery_checkin", "nps_survey", "review_request")
    }


def simulate_answers(
    client: httpx.Client, targets: Targets, *, key: bytes, seed: int = 16
) -> SimulatedAnswers:
    """Answer the ``targets`` through ``client`` (the app's base URL), like a browser: GET
    the page, then POST its form."""
    rng = random.Random(seed)
    done = SimulatedAnswers()
    statuses: Counter[int] = Counter()
    for customer, touchpoint in targets["delivery_checkin"]:
        score = rng.choice([5, 5, 4, 4, 3, 2, 1])
        token = sign(key, LinkClaim("survey", customer, touchpoint, score))
        client.get(f"/s/{token}")
        answer = client.post(f"/s/{token}", data={"score": str(score)})
        statuses[answer.status_code] += 1
        done.checkins += answer.status_code == 200
    for customer, touchpoint in targets["nps_survey"]:
        score = rng.choice([10, 9, 9, 8, 7, 6, 3])
        token = sign(key, LinkClaim("nps", customer, touchpoint, score))
        client.get(f"/n/{token}")
        comment = "Delivery took longer than promised." if score <= 6 else ""
        answer = client.post(f"/n/{token}", data={"score": str(score), "comment": comment})
        statuses[answer.status_code] += 1
        done.nps += answer.status_code == 200
    for customer, touchpoint in targets["review_request"]:
        token = sign(key, LinkClaim("review", customer, touchpoint))
        page = client.get(f"/r/{token}")
        fields = dict(_HIDDEN.findall(page.text))
        if not fields:
            continue
        title, body = rng.choice(_REVIEW_TEXTS)
        rating = 2 if title == "Disappointed" else rng.choice([5, 5, 4])
        answer = client.post(
            f"/r/{token}",
            data={**fields, "rating-0": str(rating), "title-0": title, "body-0": body},
        )
        statuses[answer.status_code] += 1
        done.reviews += answer.status_code == 200
    done.refused = sum(n for status, n in statuses.items() if status != 200)
    return done
