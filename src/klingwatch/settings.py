"""One settings object, from flags, environment, ``.env`` and ``klingwatch.toml``.

Precedence, highest first::

    flags (keyword arguments to Settings.load) > environment > .env > klingwatch.toml > defaults

``.env`` and ``klingwatch.toml`` are read from the working directory. ``klingwatch.toml`` uses the
field names below (``api_base = "..."``, ``slots_video = 5``); the environment and ``.env`` use the
variable names (``KLING_API_BASE``, ``KLINGWATCH_SLOTS_VIDEO``). Secrets are ``SecretStr``: they
never print, and ``klingwatch config`` masks them.

Paths are made absolute as they are read (a relative SQLite ledger file, ``download_dir``), so
a process started in another folder finds the same files. The variable names and defaults are
the library's own (:mod:`klingwatch.environment`): a ``KlingClient`` or ``Ledger`` built without
settings reads the same ``KLING_*`` / ``KLINGWATCH_DB`` variables, and nothing else. A
``klingwatch.toml`` that does not parse is a :class:`~klingwatch.errors.ConfigurationError`
naming the line; :func:`toml_warnings` names keys it does not know (with the closest known one).
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from klingwatch.environment import DEFAULT_API_BASE, absolute_db_url, default_db_url
from klingwatch.errors import ConfigurationError

__all__ = ["Setting", "Settings", "toml_warnings"]

ENV_FILE = ".env"
TOML_FILE = "klingwatch.toml"


def _env(name: str, field: str, default: Any = None, **kw: Any) -> Any:
    """A field read from environment variable ``name`` (or its own name, in TOML and flags)."""
    return Field(default=default, validation_alias=AliasChoices(name, field), **kw)


class Settings(BaseSettings):
    """Every knob klingwatch reads; see the module docstring for where each comes from."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        toml_file=TOML_FILE,
        extra="ignore",
        populate_by_name=True,
    )

    # -- Kling ---------------------------------------------------------------------------------
    access_key: SecretStr | None = _env("KLING_ACCESS_KEY", "access_key")
    secret_key: SecretStr | None = _env("KLING_SECRET_KEY", "secret_key")
    api_key: SecretStr | None = _env("KLING_API_KEY", "api_key")
    api_base: str = _env("KLING_API_BASE", "api_base", DEFAULT_API_BASE)

    # -- the ledger ----------------------------------------------------------------------------
    db: str = Field(
        default_factory=default_db_url, validation_alias=AliasChoices("KLINGWATCH_DB", "db")
    )

    # -- the engine ----------------------------------------------------------------------------
    time_scale: float = _env("KLINGWATCH_TIME_SCALE", "time_scale", 1.0, gt=0)
    requests_per_second: float = _env(
        "KLINGWATCH_REQUESTS_PER_SECOND", "requests_per_second", 10.0, gt=0
    )
    max_concurrency: int = _env("KLINGWATCH_MAX_CONCURRENCY", "max_concurrency", 4, ge=1)
    stuck_after: float | None = _env("KLINGWATCH_STUCK_AFTER", "stuck_after", None, gt=0)
    #: nominal seconds between batched sweeps per 500 active tasks (klingwatch.monitor.sweeps)
    sweep_interval: float = _env("KLINGWATCH_SWEEP_INTERVAL", "sweep_interval", 6.0, gt=0)
    #: nominal seconds between sweeps per 500 active tasks while tasks wait for a slot
    sweep_waiting: float = _env("KLINGWATCH_SWEEP_WAITING", "sweep_waiting", 2.0, gt=0)
    sweep_min: float = _env("KLINGWATCH_SWEEP_MIN", "sweep_min", 2.0, gt=0)
    sweep_max: float = _env("KLINGWATCH_SWEEP_MAX", "sweep_max", 60.0, gt=0)
    slots_video: int | None = _env("KLINGWATCH_SLOTS_VIDEO", "slots_video", None, ge=1)
    slots_image: int | None = _env("KLINGWATCH_SLOTS_IMAGE", "slots_image", None, ge=1)
    slots_try_on: int | None = _env("KLINGWATCH_SLOTS_TRY_ON", "slots_try_on", None, ge=1)
    #: this engine's name among replicas sharing one ledger (unset: host:pid:random)
    replica_id: str | None = _env("KLINGWATCH_REPLICA_ID", "replica_id")
    #: nominal seconds a lease on ledger work lasts: a dead replica's work moves on after this
    lease_seconds: float = _env("KLINGWATCH_LEASE_SECONDS", "lease_seconds", 60.0, gt=0)
    #: seconds after a 1102 (pack exhausted) pause when sending resumes by itself; unset: never
    resume_after_1102: float | None = _env(
        "KLINGWATCH_RESUME_AFTER_1102", "resume_after_1102", None, gt=0
    )

    # -- the web face --------------------------------------------------------------------------
    public_url: str | None = _env("KLINGWATCH_PUBLIC_URL", "public_url")
    callback_token: SecretStr | None = _env("KLINGWATCH_CALLBACK_TOKEN", "callback_token")
    webhook_secret: SecretStr | None = _env("KLINGWATCH_WEBHOOK_SECRET", "webhook_secret")
    api_token: SecretStr | None = _env("KLINGWATCH_API_TOKEN", "api_token")
    trust_unsigned_callbacks: bool = _env(
        "KLINGWATCH_TRUST_UNSIGNED_CALLBACKS", "trust_unsigned_callbacks", False
    )

    # -- downloads -----------------------------------------------------------------------------
    download_dir: str | None = _env("KLINGWATCH_DOWNLOAD_DIR", "download_dir")
    download_template: str = _env(
        "KLINGWATCH_DOWNLOAD_TEMPLATE",
        "download_template",
        "{batch}/{external_task_id}_{index}.{ext}",
    )
    expiry_warn_days: float = _env("KLINGWATCH_EXPIRY_WARN_DAYS", "expiry_warn_days", 5.0, ge=0)

    # -- alerts and outbound events (cool-downs: wall-clock seconds, never scaled) -------------
    #: apprise URLs, comma-separated (``slack://...,ntfy://...``)
    notify: str | None = _env("KLINGWATCH_NOTIFY", "notify")
    #: where every status change is POSTed as a signed JSON event
    events_url: str | None = _env("KLINGWATCH_EVENTS_URL", "events_url")
    #: the Standard Webhooks secret (``whsec_...``); unset: one is generated and kept in the ledger
    events_secret: SecretStr | None = _env("KLINGWATCH_EVENTS_SECRET", "events_secret")
    #: how often the alert rules are evaluated
    alert_interval: float = _env("KLINGWATCH_ALERT_INTERVAL", "alert_interval", 30.0, gt=0)
    alert_stuck_cooldown: float = _env(
        "KLINGWATCH_ALERT_STUCK_COOLDOWN", "alert_stuck_cooldown", 6 * 3600.0, gt=0
    )
    #: a running batch whose finished tasks failed more than this share (percent) is reported
    alert_failure_percent: float = _env(
        "KLINGWATCH_ALERT_FAILURE_PERCENT", "alert_failure_percent", 20.0, ge=0, le=100
    )
    #: ... once at least this many of its tasks finished
    alert_failure_min_finished: int = _env(
        "KLINGWATCH_ALERT_FAILURE_MIN_FINISHED", "alert_failure_min_finished", 10, ge=1
    )
    alert_failure_cooldown: float = _env(
        "KLINGWATCH_ALERT_FAILURE_COOLDOWN", "alert_failure_cooldown", 6 * 3600.0, gt=0
    )
    alert_paused_cooldown: float = _env(
        "KLINGWATCH_ALERT_PAUSED_COOLDOWN", "alert_paused_cooldown", 6 * 3600.0, gt=0
    )
    #: callbacks are silent when, within this window, tasks sent with a callback URL finished
    alert_callbacks_window: float = _env(
        "KLINGWATCH_ALERT_CALLBACKS_WINDOW", "alert_callbacks_window", 1800.0, gt=0
    )
    #: ... this many by polling and none by callback
    alert_callbacks_min_polled: int = _env(
        "KLINGWATCH_ALERT_CALLBACKS_MIN_POLLED", "alert_callbacks_min_polled", 5, ge=1
    )
    alert_callbacks_cooldown: float = _env(
        "KLINGWATCH_ALERT_CALLBACKS_COOLDOWN", "alert_callbacks_cooldown", 6 * 3600.0, gt=0
    )
    alert_expiry_cooldown: float = _env(
        "KLINGWATCH_ALERT_EXPIRY_COOLDOWN", "alert_expiry_cooldown", 24 * 3600.0, gt=0
    )

    @field_validator("db")
    @classmethod
    def _absolute_db(cls, value: str) -> str:
        return absolute_db_url(value)

    @field_validator("download_dir")
    @classmethod
    def _absolute_download_dir(cls, value: str | None) -> str | None:
        return None if value is None else str(Path(value).expanduser().absolute())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls),
        )

    @classmethod
    def load(cls, **flags: Any) -> Settings:
        """Settings with ``flags`` on top (``None`` means "flag not given").

        A bad value raises :class:`~klingwatch.errors.ConfigurationError` naming the
        variable and what is wrong, never a pydantic traceback; so does a ``klingwatch.toml``
        that does not parse.
        """
        _read_toml()
        try:
            return cls(**{k: v for k, v in flags.items() if v is not None})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}={err.get('input')!r}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigurationError(f"invalid setting: {problems}") from None

    # -- introspection for `klingwatch config` -------------------------------------------------
    @property
    def has_credentials(self) -> bool:
        return self.api_key is not None or (
            self.access_key is not None and self.secret_key is not None
        )

    @classmethod
    def explain(cls, **flags: Any) -> list[Setting]:
        """Every setting's effective value and where it came from (secrets masked)."""
        settings = cls.load(**flags)
        given = {k for k, v in flags.items() if v is not None}
        layers: list[tuple[str, dict[str, Any]]] = [
            ("environment", EnvSettingsSource(cls)()),
            (ENV_FILE, DotEnvSettingsSource(cls, env_file=ENV_FILE)()),
            (TOML_FILE, TomlConfigSettingsSource(cls)()),
        ]
        rows: list[Setting] = []
        for name, info in cls.model_fields.items():
            origin = "default"
            if name in given:
                origin = "flag"
            else:
                for label, found in layers:
                    if any(key in found for key in _keys(name, info)):
                        origin = label
                        break
            value = getattr(settings, name)
            rows.append(
                Setting(
                    name=name,
                    env=_env_name(name, info),
                    value=_show(value),
                    origin=origin,
                    secret=SecretStr in get_args(info.annotation),
                )
            )
        return rows


def _read_toml(path: Path | None = None) -> dict[str, Any]:
    """The parsed ``klingwatch.toml`` (``{}`` when there is none); a bad one is one clear error."""
    path = path or Path(TOML_FILE)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(
            f"{path} is not valid TOML: {exc}; fix it (e.g. slots_video = 5, "
            'api_base = "https://...") or remove it'
        ) from None


def toml_warnings(path: Path | None = None) -> list[str]:
    """One line per key of ``klingwatch.toml`` that is no setting (and is therefore ignored).

    A file that does not parse gives no warning here: reading the settings reports it.
    """
    try:
        found = _read_toml(path)
    except ConfigurationError:
        return []
    field_of: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        for key in _keys(name, info):
            field_of[key.lower()] = name
    where = path or Path(TOML_FILE)
    out: list[str] = []
    for key in found:
        if key.lower() in field_of:
            continue
        close = difflib.get_close_matches(key.lower(), list(field_of), n=1, cutoff=0.6)
        hint = f" (did you mean {field_of[close[0]]!r}?)" if close else ""
        out.append(f"{where}: unknown setting {key!r}{hint}; it is ignored")
    return out


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of ``klingwatch config``."""

    name: str
    env: str
    value: str | None
    origin: str  # flag | environment | .env | klingwatch.toml | default
    secret: bool


def _keys(name: str, info: FieldInfo) -> set[str]:
    keys = {name}
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        keys.update(str(choice) for choice in alias.choices)
    return keys | {k.lower() for k in keys}


def _env_name(name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices) and alias.choices:
        return str(alias.choices[0])
    return name.upper()


def _show(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        return "****" + raw[-4:] if len(raw) > 12 else "****"
    return str(value)
