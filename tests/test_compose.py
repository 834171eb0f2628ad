"""docker-compose.yml: no Docker engine runs here, so the file is checked by reading it."""

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
