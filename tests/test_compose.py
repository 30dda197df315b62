"""docker-compose.yml, Dockerfile and .dockerignore, checked by parsing (no Docker engine here).

What this pins: the distributed deployment of DESIGN §2 (redis, postgres, init, worker,
beat, flower on one image), the environment contract of DESIGN §4, health checks and
start order, commands that exist, and no secret written into the files.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery import Celery

from worker.celery_app import DECIDE_QUEUE, QUEUES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")

IMAGE = "storywatch:local"
APP_SERVICES = ("init", "worker", "decider", "beat", "flower", "web")
STORYWATCH_SUBCOMMANDS = {"init", "worker", "beat", "run", "web"}
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def resolved(value: str) -> str:
    """A value as compose would see it with no .env: `${VAR:-default}` -> default."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def healthcheck_command(service: str) -> str:
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL"), test
    return " ".join(test[1:])


def test_all_services_are_defined() -> None:
    assert set(SERVICES) >= {"redis", "postgres", *APP_SERVICES}
    assert SERVICES["redis"]["image"] == "redis:7-alpine"
    assert SERVICES["postgres"]["image"] == "postgres:16-alpine"


def test_app_services_share_one_image_built_from_the_dockerfile() -> None:
    for name in APP_SERVICES:
        service = SERVICES[name]
        assert service["image"] == IMAGE, name
        assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name


def test_app_services_get_the_configuration_contract() -> None:
    expected = {
        "STORYWATCH_REDIS_URL": "redis://redis:6379/0",
        "STORYWATCH_DATABASE_URL": (
            "postgresql+psycopg://storywatch:storywatch@postgres:5432/storywatch"
        ),
        "STORYWATCH_CONFIG_DIR": "/app/config",
        "STORYWATCH_DATA_DIR": "/data",
    }
    for name in APP_SERVICES:
        service = SERVICES[name]
        environment = {k: resolved(str(v)) for k, v in service["environment"].items()}
        assert {k: environment.get(k) for k in expected} == expected, name
        # Only the desk adds a setting of its own.
        assert set(environment) - set(expected) <= (
            {"STORYWATCH_WEB_PUBLIC_READS"} if name == "web" else set()
        ), name
        assert service["env_file"] == [{"path": ".env", "required": False}], name
        assert "./config:/app/config:ro" in service["volumes"], name
        data_volume = next(v for v in service["volumes"] if v.endswith(":/data"))
        assert data_volume.split(":")[0] in COMPOSE["volumes"], name


def test_postgres_is_configured_and_keeps_its_data() -> None:
    postgres = SERVICES["postgres"]
    environment = {k: resolved(str(v)) for k, v in postgres["environment"].items()}
    assert environment == {
        "POSTGRES_DB": "storywatch",
        "POSTGRES_USER": "storywatch",
        "POSTGRES_PASSWORD": "storywatch",
    }
    # The application's URL and the server take the password from the same variable.
    assert postgres["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-storywatch}"
    database_url = SERVICES["worker"]["environment"]["STORYWATCH_DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:-storywatch}@" in database_url
    volume = postgres["volumes"][0]
    assert volume.endswith(":/var/lib/postgresql/data")
    assert volume.split(":")[0] in COMPOSE["volumes"]


def test_health_checks() -> None:
    assert healthcheck_command("redis") == "redis-cli ping"
    assert healthcheck_command("postgres").startswith("pg_isready")
    worker = healthcheck_command("worker")
    assert worker.startswith("celery -A worker.celery_app inspect ping")
    # "$$" reaches the container as "$": a single "$" would be interpolated on the host.
    # The node it pings is the one the worker's command names.
    assert "-d celery@$$HOSTNAME" in worker
    assert "--hostname=celery@%h" in SERVICES["worker"]["command"]
    assert "--timeout" in worker
    assert SERVICES["worker"]["healthcheck"]["start_period"]


def test_start_order_uses_health_and_completion_conditions() -> None:
    healthy = {"condition": "service_healthy"}
    assert SERVICES["init"]["depends_on"] == {"redis": healthy, "postgres": healthy}
    for name in ("worker", "decider", "beat", "flower"):
        assert SERVICES[name]["depends_on"] == {
            "redis": healthy,
            "postgres": healthy,
            "init": {"condition": "service_completed_successfully"},
        }, name
    # service_healthy is only satisfiable when the dependency defines a health check.
    for service in SERVICES.values():
        for dependency, rule in service.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], dependency


def test_init_is_one_shot_and_long_running_services_restart() -> None:
    assert SERVICES["init"]["restart"] == "no"
    for name in ("redis", "postgres", "worker", "decider", "beat", "flower"):
        assert SERVICES[name]["restart"] == "unless-stopped", name


def test_flower_is_published_on_loopback_port_5555() -> None:
    flower = SERVICES["flower"]
    assert flower["command"] == ["celery", "-A", "worker.celery_app", "flower", "--port=5555"]
    assert flower["ports"] == ["127.0.0.1:5555:5555"]


def test_commands_are_storywatch_or_celery_with_the_app_module() -> None:
    scripts = PYPROJECT["project"]["scripts"]
    assert scripts["storywatch"] == "worker.cli.main:main"
    for name in APP_SERVICES:
        command = SERVICES[name]["command"]
        assert isinstance(command, list), f"{name}: exec form, so signals reach the process"
        if command[0] == "storywatch":
            assert command[1] in STORYWATCH_SUBCOMMANDS, name
        else:
            assert command[:3] == ["celery", "-A", "worker.celery_app"], name
    assert [SERVICES[n]["command"] for n in ("init", "beat")] == [
        ["storywatch", "init"],
        ["storywatch", "beat"],
    ]


def _consumed(command: list[str]) -> set[str]:
    """The queues a `storywatch worker` command consumes (Celery's -Q and -X)."""
    queues = set(QUEUES)
    for option, value in itertools.pairwise(command):
        if option == "-Q":
            queues = set(value.split(","))
        elif option == "-X":
            queues -= set(value.split(","))
    return queues


def test_every_queue_has_a_consumer_and_one_solo_worker_decides() -> None:
    commands = {name: service.get("command", []) for name, service in SERVICES.items()}
    workers = {name: command for name, command in commands.items() if command[1:2] == ["worker"]}
    assert set(workers) == {"worker", "decider"}
    for name, command in workers.items():
        assert "--hostname=celery@%h" in command, name  # the node the health check pings
        assert SERVICES[name]["healthcheck"]["test"] == SERVICES["worker"]["healthcheck"]["test"]
    assert set().union(*(_consumed(c) for c in workers.values())) == set(QUEUES)
    assert _consumed(workers["decider"]) == {DECIDE_QUEUE}
    assert DECIDE_QUEUE not in _consumed(workers["worker"])
    assert "--pool=solo" in workers["decider"]


def test_flower_is_installed_in_the_image() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(dep.startswith("flower") for dep in extras["flower"])
    install = re.search(r'^RUN pip install "\.\[([\w,]+)\]"$', DOCKERFILE, re.MULTILINE)
    assert install, "the Dockerfile installs the project with its extras"
    assert {"flower", "apprise"} <= set(install.group(1).split(","))
    assert set(install.group(1).split(",")) <= set(extras)


def test_storywatch_subcommands_exist() -> None:
    """Each `storywatch X` used by a service answers `--help`."""
    used = {
        SERVICES[n]["command"][1] for n in APP_SERVICES if SERVICES[n]["command"][0] == "storywatch"
    }
    for subcommand in sorted(used):
        done = subprocess.run(
            [sys.executable, "-m", "worker", subcommand, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"storywatch {subcommand} --help: {done.stderr[-2000:]}"


def test_celery_app_module_exposes_an_app() -> None:
    """`celery -A worker.celery_app` finds an attribute named `app` or `celery`."""
    if importlib.util.find_spec("worker.celery_app") is None:
        pytest.skip("worker/celery_app.py is not written yet")
    module = importlib.import_module("worker.celery_app")
    apps = [getattr(module, name, None) for name in ("app", "celery")]
    assert any(isinstance(app, Celery) for app in apps)


def test_no_secret_is_written_into_the_compose_file() -> None:
    for pattern in (
        r"whsec_[A-Za-z0-9+/=]{8,}",  # Standard Webhooks signing secrets
        r"hooks\.slack\.com/services/",  # Slack incoming-webhook URLs
        r"xox[abposr]-",  # Slack tokens
        r"-----BEGIN [A-Z ]*PRIVATE KEY",
    ):
        assert not re.search(pattern, COMPOSE_TEXT), pattern
    for name, service in SERVICES.items():
        environment = service.get("environment") or {}
        for key, raw in environment.items():
            value = str(raw)
            if re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", key):
                assert value.startswith("${"), f"{name}.{key} must come from .env"
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert password.startswith("${"), f"{name}.{key} embeds a password"


def test_dockerfile_builds_a_non_root_slim_image() -> None:
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^WORKDIR /app$", DOCKERFILE, re.MULTILINE)
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), "the last USER is not root"
    assert "COPY config ./config" in DOCKERFILE
    assert re.search(r"^CMD \[\"storywatch\", \"run\"\]$", DOCKERFILE, re.MULTILINE)


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".env.*", ".git", ".venv", "var"} <= ignored
    # The image needs the package, its metadata and the default config.
    assert not {"worker", "pyproject.toml", "config", "README.md"} & ignored


def test_the_desk_is_published_on_loopback_with_public_reads_inside() -> None:
    web = SERVICES["web"]
    assert web["command"] == ["storywatch", "web", "--host", "0.0.0.0", "--port", "8080"]
    assert web["ports"] == ["127.0.0.1:8080:8080"]
    assert web["environment"]["STORYWATCH_WEB_PUBLIC_READS"] == "true"
    assert web["restart"] == "unless-stopped"
