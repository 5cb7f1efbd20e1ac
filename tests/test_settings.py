from pathlib import Path

import pytest

from klingwatch.environment import DEFAULT_API_BASE
from klingwatch.errors import ConfigurationError
from klingwatch.kling.products import Family
from klingwatch.monitor.submitter import slot_limits
from klingwatch.settings import Settings


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_without_any_configuration(workdir: Path) -> None:
    settings = Settings.load()
    assert settings.api_base == DEFAULT_API_BASE
    assert settings.db == f"sqlite:///{workdir / 'klingwatch.db'}"
    assert settings.time_scale == 1.0
    assert not settings.has_credentials


def test_precedence_flag_over_env_over_dotenv_over_toml(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "klingwatch.toml").write_text(
        'api_base = "http://from-toml"\nslots_image = 3\ntime_scale = 0.5\nslots_video = 9\n'
    )
    (workdir / ".env").write_text("KLINGWATCH_SLOTS_VIDEO=7\nKLINGWATCH_TIME_SCALE=0.25\n")
    monkeypatch.setenv("KLINGWATCH_TIME_SCALE", "0.1")

    settings = Settings.load(db="sqlite:///flag.db")
    assert settings.db == f"sqlite:///{workdir / 'flag.db'}"  # relative to where it was read
    assert settings.time_scale == 0.1  # environment beats .env and toml
    assert settings.slots_video == 7  # .env beats toml
    assert settings.slots_image == 3  # toml beats the default
    assert settings.api_base == "http://from-toml"

    origins = {row.name: row.origin for row in Settings.explain(db="sqlite:///flag.db")}
    assert origins["db"] == "flag"
    assert origins["time_scale"] == "environment"
    assert origins["slots_video"] == ".env"
    assert origins["slots_image"] == "klingwatch.toml"
    assert origins["requests_per_second"] == "default"


def test_secrets_are_masked_everywhere(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_API_KEY", "sk-very-secret-api-key-1234")
    monkeypatch.setenv("KLINGWATCH_WEBHOOK_SECRET", "whsec_c2VjcmV0c2VjcmV0")
    settings = Settings.load()
    assert settings.has_credentials
    assert "very-secret" not in repr(settings)
    rows = {row.name: row for row in Settings.explain()}
    assert rows["api_key"].secret
    assert rows["api_key"].value == "****1234"
    assert rows["webhook_secret"].secret
    assert "c2VjcmV0" not in str(rows["webhook_secret"].value)


def test_a_bad_value_names_the_setting(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLINGWATCH_TIME_SCALE", "fast")
    with pytest.raises(ConfigurationError, match="KLINGWATCH_TIME_SCALE='fast'"):
        Settings.load()


def test_every_pack_family_has_a_slot_setting(workdir: Path) -> None:
    settings = Settings.load(slots_video=5, slots_image=10, slots_try_on=2)
    assert slot_limits(settings) == {Family.VIDEO: 5, Family.IMAGE: 10, Family.TRY_ON: 2}
    assert set(slot_limits(settings)) == {f.value for f in Family}
    assert slot_limits(Settings.load()) == {}


def test_alerts_and_events_read_from_klingwatch_toml_and_bad_thresholds_are_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "klingwatch.toml").write_text(
        'notify = "ntfys://my-topic"\nevents_url = "https://app.example/events"\n'
        "alert_failure_percent = 50\n"
    )
    settings = Settings.load()
    assert settings.notify == "ntfys://my-topic"
    assert settings.events_url == "https://app.example/events"
    assert settings.alert_failure_percent == 50
    monkeypatch.setenv("KLINGWATCH_ALERT_FAILURE_PERCENT", "150")
    with pytest.raises(ConfigurationError, match="KLINGWATCH_ALERT_FAILURE_PERCENT"):
        Settings.load()
