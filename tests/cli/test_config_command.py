import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from klingwatch.cli import app


def test_config_shows_values_and_origins_with_secrets_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "klingwatch.toml").write_text("slots_video = 4\n")
    monkeypatch.setenv("KLING_ACCESS_KEY", "ak-public-part")
    monkeypatch.setenv("KLING_SECRET_KEY", "sk-do-not-print-me-9876")

    result = CliRunner().invoke(app, ["config", "--json"])

    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["slots_video"] == {
        "name": "slots_video",
        "env": "KLINGWATCH_SLOTS_VIDEO",
        "value": "4",
        "origin": "klingwatch.toml",
    }
    assert rows["secret_key"]["origin"] == "environment"
    assert "do-not-print" not in result.output
    assert rows["secret_key"]["value"] == "****9876"


def test_config_table_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert "KLINGWATCH_DB" in result.output
    assert "default" in result.output
