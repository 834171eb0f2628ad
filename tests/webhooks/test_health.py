from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from postpurchase.settings import Settings
from postpurchase.store.database import make_engine, session_factory
from postpurchase.webhooks.app import create_app


def test_health_is_ok_when_the_database_answers(client):
    response = client.get("/webhooks/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok"})


def test_health_is_503_when_the_database_does_not_answer():
    # Nothing listens on port 9 of the loopback: the connection is refused at once.
    unreachable = make_engine(
        make_url("postgresql+psycopg://postgres@127.0.0.1:9/none"), connect_timeout=1
    )
    app = create_app(Settings(), session_factory=session_factory(unreachable))
    with TestClient(app) as client:
        response = client.get("/webhooks/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "OperationalError"}
