"""docker-compose.yml: no Docker engine runs here, so the file is checked by reading it."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_component_of_the_distributed_setup_is_there(compose):
    services = compose["services"]
    assert {"postgres", "redis", "airflow-init", "webhooks", *AIRFLOW_SERVICES} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name


def test_every_long_running_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        if name != "airflow-init":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_airflow_components_share_one_image_and_the_celery_settings(compose):
    for name in [*AIRFLOW_SERVICES, "webhooks", "airflow-init"]:
        service = compose["services"][name]
        env = service["environment"]
        assert service["image"] == "postpurchase:latest", name
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
            "http://airflow-apiserver:8080/"
        ), name
        # the engine's database is its own, never Airflow's metadata database
        engine_db = env["POSTPURCHASE_DATABASE_URL"]
        assert engine_db.rsplit("/", 1)[-1] == "postpurchase", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[-1] == "airflow", name


def test_init_migrates_both_databases_before_anything_starts(compose):
    services = compose["services"]
    assert "airflow db migrate" in services["airflow-init"]["command"][-1]
    assert "postpurchase db upgrade" in services["airflow-init"]["command"][-1]
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name


def test_every_variable_the_file_requires_is_documented_in_the_example(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    example = (ROOT / ".env.example").read_text()
    required = {part.split(":?")[0] for part in text.split("${")[1:] if ":?" in part.split("}")[0]}
    assert required
    for variable in required:
        assert f"{variable}=" in example, variable


def _postpurchase_env(service) -> set[str]:
    env = service.get("environment") or {}
    return {name for name in env if not name.startswith(("AIRFLOW__", "_AIRFLOW"))}


SENDING = {
    "POSTPURCHASE_SENDGRID_API_KEY",
    "POSTPURCHASE_TWILIO_ACCOUNT_SID",
    "POSTPURCHASE_TWILIO_MESSAGING_SERVICE_SID",
    "AIRFLOW_CONN_POSTPURCHASE_AIRFLOW_API",
}
VERIFYING = {
    "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET",
    "POSTPURCHASE_WOOCOMMERCE_WEBHOOK_SECRET",
    "POSTPURCHASE_WEBHOOK_SECRET",
    "POSTPURCHASE_SENDGRID_EVENT_PUBLIC_KEY",
}


def test_each_service_gets_only_the_secrets_it_uses(compose):
    services = compose["services"]
    # An env_file would hand every variable of .env to the container.
    assert not [name for name, service in services.items() if "env_file" in service]
    for name in ("airflow-apiserver", "webhooks"):
        env = _postpurchase_env(services[name])
        assert VERIFYING <= env, name
        assert not env & SENDING, f"{name} gets sending credentials: {env & SENDING}"
        assert "POSTPURCHASE_SIGNING_SECRET" in env, name
    worker = _postpurchase_env(services["airflow-worker"])
    assert SENDING <= worker
    assert not worker & VERIFYING, f"the worker gets webhook secrets: {worker & VERIFYING}"
    for name in ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-init"):
        env = _postpurchase_env(services[name])
        secrets = {v for v in env if "SECRET" in v or "TOKEN" in v or "KEY" in v or "CONN" in v}
        assert not secrets, f"{name} gets {secrets}"


def test_every_variable_the_file_reads_is_in_the_example(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    example = (ROOT / ".env.example").read_text()
    read = set(re.findall(r"(?<!\$)\$\{(\w+)", text))  # $${...} is the container's own
    assert "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET" in read
    for variable in read:
        assert f"{variable}=" in example, variable


def test_run_notes_log_in_as_an_op_not_the_admin(compose):
    example = (ROOT / ".env.example").read_text()
    worker_env = compose["services"]["airflow-worker"]["environment"]
    assert "AIRFLOW_NOTES_USERNAME" in worker_env["AIRFLOW_CONN_POSTPURCHASE_AIRFLOW_API"]
    assert '"login": "admin"' not in example
    assert "--role Op" in compose["services"]["airflow-init"]["command"][-1]


def test_the_opt_out_spool_outlives_its_containers(compose):
    spool = "opt-out-spool:/opt/postpurchase/var/opt-out-spool"
    for name in ("airflow-apiserver", "webhooks", "airflow-worker"):
        assert spool in compose["services"][name]["volumes"], name
    assert "opt-out-spool" in compose["volumes"]
