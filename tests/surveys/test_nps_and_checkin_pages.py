"""The NPS page and the check-in's comment, driven like a browser (SQLite and PostgreSQL)."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from survey_links import link

from postpurchase.store.models import InboxEvent, SurveyResponse
from postpurchase.surveys.models import NpsResponse, SupportNotification


def _count(store, model):
    with store() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_the_nps_page_preselects_the_clicked_score_and_a_get_records_nothing(
    client, store, answered
):
    scanner_hits = [
        client.get(link("nps", answered["customer"], answered["nps_survey"], n)) for n in range(11)
    ]
    page = scanner_hits[8]

    assert all(hit.status_code == 200 for hit in scanner_hits)
    assert re.findall(r'value="(\d+)" checked', page.text) == ["8"]
    assert page.text.count('type="radio"') == 11
    assert 'name="comment"' in page.text and page.text.count("<button") == 1
    assert _count(store, NpsResponse) == 0 and _count(store, InboxEvent) == 0
    assert _count(store, SupportNotification) == 0


def test_an_answer_and_its_comment_are_stored_and_the_last_one_wins(client, store, answered):
    url = link("nps", answered["customer"], answered["nps_survey"], 10)

    first = client.post(url, data={"score": "10"})
    second = client.post(url, data={"score": "9", "comment": "Fast delivery, lovely wool."})

    assert first.status_code == second.status_code == 200
    assert "You answered 9 out of 10." in second.text
    with store() as session:
        answer = session.execute(select(NpsResponse)).scalar_one()
    assert (answer.score, answer.comment, answer.order_id) == (
        9,
        "Fast delivery, lovely wool.",
        answered["order"],
    )
    assert _count(store, InboxEvent) == 0  # a promoter: nothing negative to act on


def test_forged_foreign_or_out_of_range_nps_links_store_nothing(client, store, answered):
    genuine = link("nps", answered["customer"], answered["nps_survey"], 7)

    assert (
        client.get(link("nps", answered["customer"], answered["nps_survey"], 11)).status_code == 400
    )
    assert client.post(genuine[:-2] + "xx").status_code == 400
    assert (
        client.post(
            link("survey", answered["customer"], answered["nps_survey"], 3).replace("/s/", "/n/")
        ).status_code
        == 400
    )
    assert client.post(genuine, data={"score": "12"}).status_code == 422
    assert (
        client.post(link("nps", answered["customer"] + 999, answered["nps_survey"], 7)).status_code
        == 404
    )
    assert _count(store, NpsResponse) == 0


def test_the_check_in_page_takes_a_comment_with_the_score(client, store, answered):
    url = link("survey", answered["customer"], answered["delivery_checkin"], 4)

    page = client.get(url)
    done = client.post(url, data={"score": "4", "comment": "Box a bit dented, sweater fine."})

    assert 'name="comment"' in page.text
    assert done.status_code == 200
    with store() as session:
        answer = session.execute(select(SurveyResponse)).scalar_one()
    assert (answer.score, answer.comment) == (4, "Box a bit dented, sweater fine.")
