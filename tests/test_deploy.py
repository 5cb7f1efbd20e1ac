"""The team deployment (compose.yaml, Dockerfile, deploy/): the files parse, the services and
images are the ones documented, and everything they run or mount exists. Docker itself is not
needed (nor used): a real ``docker compose up`` is left to where it is installed."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from klingwatch.settings import Settings

ROOT = Path(__file__).parent.parent
REPLICAS = ("klingwatch-1", "klingwatch-2")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    found: dict[str, Any] = _yaml(ROOT / "compose.yaml")
    return found


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile instruction, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_compose_runs_postgres_two_replicas_prometheus_and_grafana(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", *REPLICAS, "prometheus", "grafana"}
    assert services["postgres"]["image"] == "postgres:15"
    for name in REPLICAS:
        replica = services[name]
        assert replica["build"] == "."
        assert replica["command"][:4] == ["klingwatch", "serve", "--host", "0.0.0.0"]
        assert replica["environment"]["KLINGWATCH_DB"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in replica["environment"]["KLINGWATCH_DB"]
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    # One download folder for both: a file is claimed in the ledger and fetched once.
    assert services[REPLICAS[0]]["volumes"] == services[REPLICAS[1]]["volumes"]


def test_every_file_compose_mounts_exists(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in named:
                continue
            assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"


def test_prometheus_scrapes_both_replicas_and_loads_the_shipped_rules(
    compose: dict[str, Any],
) -> None:
    config = _yaml(ROOT / "deploy" / "prometheus.yml")
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:8000" for name in REPLICAS}
    # Each replica answers its own service name (the server refuses unknown Host headers).
    for name in REPLICAS:
        command = compose["services"][name]["command"]
        assert command[command.index("--allow-host") + 1] == name
    mounted = {v.split(":")[1] for v in compose["services"]["prometheus"]["volumes"]}
    assert set(config["rule_files"]) <= mounted
    _yaml(ROOT / "docs" / "alert-rules.yml")


def test_grafana_is_provisioned_with_prometheus_and_the_shipped_dashboard(
    compose: dict[str, Any],
) -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    [source] = _yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True  # what the dashboard's ${datasource} picks
    [provider] = _yaml(provisioning / "dashboards" / "klingwatch.yml")["providers"]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    dashboard = next(src for src, dest in mounts.items() if dest.endswith(".json"))
    assert Path(mounts[dashboard]).parent == Path(provider["options"]["path"])
    assert dashboard == "./docs/grafana-dashboard.json"
    assert json.loads((ROOT / dashboard).read_text())["uid"] == "klingwatch"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


def test_the_image_is_slim_python_311_runs_serve_and_not_as_root() -> None:
    steps = _dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert any(word == "RUN" and "pip install" in args and "." in args for word, args in steps)
    users = [args for word, args in steps if word == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    [cmd] = [json.loads(args) for word, args in steps if word == "CMD"]
    assert cmd[:4] == ["klingwatch", "serve", "--host", "0.0.0.0"]
    copied = [args.split()[:-1] for word, args in steps if word == "COPY"]
    for sources in copied:
        assert all((ROOT / s).exists() for s in sources), sources


def _serve_help() -> str:
    done = subprocess.run(
        [sys.executable, "-c", "from klingwatch.cli import main; main()", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_commands_the_images_run_exist(compose: dict[str, Any]) -> None:
    help_text = _serve_help()
    [cmd] = [json.loads(args) for word, args in _dockerfile() if word == "CMD"]
    commands = [cmd, *(compose["services"][name]["command"] for name in REPLICAS)]
    for command in commands:
        for option in (word for word in command if word.startswith("--")):
            assert option in help_text, f"{shlex.join(command)}: serve has no {option}"


def test_example_env_names_only_settings_and_compose_variables() -> None:
    compose_variables = {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    known = {
        str(choice)
        for info in Settings.model_fields.values()
        for choice in getattr(info.validation_alias, "choices", [])
    }
    for line in (ROOT / "deploy" / "example.env").read_text().splitlines():
        line = line.lstrip("# ").strip()
        if "=" not in line or " " in line.split("=")[0]:
            continue
        name = line.split("=")[0]
        assert name in known | compose_variables, f"example.env: {name} is no setting"
