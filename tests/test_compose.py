"""docker-compose.yml and the Dockerfile name only things that exist in this repository.

Each service built from our image must run a real entry point (the WSGI module, the Celery app and
its queues, a management command), and every environment variable it sets must be one the product
reads; a typo there would silently fall back to a default in production.
"""

import importlib
import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = sorted(name for name, service in SERVICES.items() if "build" in service)
#: how the product reads its environment: the typed readers in annotation_app.lib.env and os.environ
_READ = re.compile(
    r"""(?:env_(?:str|bool|int|float|list)\(|os\.environ(?:\.get)?[\[(]|os\.getenv\()\s*["']([A-Z][A-Z0-9_]*)["']"""
)


def names_the_product_reads() -> set[str]:
    names = set()
    for package in ("annotation_app", "inference_worker", "medsam2"):
        for path in (REPO / package).rglob("*.py"):
            if "tests" not in path.parts:
                names.update(_READ.findall(path.read_text()))
    return names


def _option(command: list[str], *flags: str) -> str:
    for index, word in enumerate(command):
        if word in flags:
            return command[index + 1]
    raise AssertionError(f"none of {flags} in {command}")


def test_the_deployment_has_the_six_services():
    assert {"web", "worker-gpu", "worker-train", "worker-cpu", "postgres", "redis"} <= set(SERVICES)
    assert {"web", "worker-gpu", "worker-train", "worker-cpu"} <= set(OURS)


@pytest.mark.parametrize("name", OURS)
def test_every_service_command_names_a_real_entry_point(name):
    command = SERVICES[name]["command"]
    program = command[0]
    if program == "gunicorn":
        module, _, attribute = command[1].partition(":")
        assert hasattr(importlib.import_module(module), attribute or "application")
    elif program == "celery":
        from celery import Celery

        app_module = importlib.import_module(_option(command, "-A", "--app"))
        app = next(value for value in vars(app_module).values() if isinstance(value, Celery))
        declared = {queue.name for queue in app.conf.task_queues}
        assert set(_option(command, "-Q", "--queues").split(",")) <= declared
    elif program == "python":
        from django.core.management import get_commands

        assert command[1] == "manage.py"
        assert command[2] in get_commands()
    else:
        pytest.fail(f"{name}: unexpected program {program!r}")


@pytest.mark.parametrize("name", OURS)
def test_every_variable_a_service_sets_is_read_by_the_product(name):
    unread = sorted(set(SERVICES[name].get("environment") or {}) - names_the_product_reads())
    assert unread == []


def test_the_reader_pattern_finds_the_core_settings():
    assert {
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "SECRET_KEY",
        "DEBUG",
        "ALLOWED_HOSTS",
    } <= names_the_product_reads()


def test_the_workers_split_the_queues_and_propagation_and_training_each_get_a_gpu():
    gpu, train, cpu = SERVICES["worker-gpu"], SERVICES["worker-train"], SERVICES["worker-cpu"]
    assert _option(gpu["command"], "-Q") == "gpu"  # training never blocks interactive propagation
    assert _option(train["command"], "-Q") == "training"
    assert _option(cpu["command"], "-Q") == "default"
    for worker in (gpu, train):
        assert _option(worker["command"], "--concurrency", "-c") == "1"
        devices = worker["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    from annotation_app.lib import tasks

    consumed = {q for w in (gpu, train, cpu) for q in _option(w["command"], "-Q").split(",")}
    assert {task.queue for task in tasks.ALL} <= consumed  # every task in the contract has a worker


def test_the_production_services_run_without_debug_on_postgres_and_redis():
    for name in ("web", "worker-gpu", "worker-train", "worker-cpu"):
        env = SERVICES[name]["environment"]
        assert env["DEBUG"] == "0"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["CELERY_BROKER_URL"].startswith("redis://")


def test_every_long_running_service_has_a_health_check():
    for name, service in SERVICES.items():
        if name != "migrate":
            assert "test" in service.get("healthcheck", {}), name


def test_every_named_volume_is_declared_and_media_and_data_persist():
    declared = set(COMPOSE["volumes"])
    used = {
        volume.split(":")[0]
        for service in SERVICES.values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used <= declared
    assert {"media", "pgdata"} <= used


def test_the_dockerfile_pins_the_tested_torch_and_installs_the_project():
    dockerfile = (REPO / "Dockerfile").read_text()
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["worker"]
    torch_pin = next(pin for pin in pins if pin.startswith("torch=="))
    assert "FROM python:3.11-slim" in dockerfile
    assert f"pip install {torch_pin}" in dockerfile
    assert re.search(r"^RUN pip install \.$", dockerfile, re.MULTILINE)
    for copied in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.MULTILINE):
        assert (REPO / copied).exists(), copied


def test_the_web_health_check_probes_a_real_route_that_answers_without_signing_in(client):
    from django.urls import resolve

    probe = " ".join(SERVICES["web"]["healthcheck"]["test"])
    path = re.search(r"http://localhost:8000(/[^'\"\s]*)", probe).group(1)
    assert resolve(path).url_name == "api-root"
    assert client.get(path, HTTP_X_FORWARDED_PROTO="https").status_code == 200


def _stage(dockerfile: str, name: str) -> str:
    """The instructions of one build stage of the Dockerfile (comments left out)."""
    found = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", dockerfile, re.MULTILINE | re.DOTALL)
    assert found, name
    return "\n".join(line for line in found.group(1).splitlines() if not line.lstrip().startswith("#"))


def test_torch_is_only_in_the_worker_extra_and_the_web_image_is_built_without_it():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [pin for pin in project["dependencies"] if pin.lower().startswith("torch")]
    assert project["optional-dependencies"]["worker"] == ["torch==2.13.0"]
    dockerfile = (REPO / "Dockerfile").read_text()
    web, base = _stage(dockerfile, "web"), _stage(dockerfile, "base")
    assert "torch" not in web and "pip install" not in base
    assert re.search(r"^FROM web AS worker$", dockerfile, re.MULTILINE)
    assert 'pip install ".[worker]"' in _stage(dockerfile, "worker")
    for name in ("web", "migrate"):
        assert SERVICES[name]["build"]["target"] == "web", name
    for name in ("worker-gpu", "worker-cpu"):
        assert SERVICES[name]["build"]["target"] == "worker", name
    assert '".[dev,worker]"' in (REPO / "scripts" / "setup.sh").read_text()
