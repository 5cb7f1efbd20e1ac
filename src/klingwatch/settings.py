"""One settings object, from flags, environment and ``.env``.

Precedence: flags (passed as keyword arguments) > environment > ``.env`` in the working
directory > defaults. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_API_BASE", "Settings", "default_db_url"]

DEFAULT_API_BASE = "https://api-singapore.klingai.com"


def default_db_url() -> str:
    """The default ledger: a SQLite file in the working directory."""
    return f"sqlite:///{Path('klingwatch.db').resolve()}"


class Settings(BaseSettings):
    """Every knob klingwatch reads from its environment."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    access_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("KLING_ACCESS_KEY", "access_key")
    )
    secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("KLING_SECRET_KEY", "secret_key")
    )
    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("KLING_API_KEY", "api_key")
    )
    api_base: str = Field(
        default=DEFAULT_API_BASE, validation_alias=AliasChoices("KLING_API_BASE", "api_base")
    )
    db: str = Field(
        default_factory=default_db_url, validation_alias=AliasChoices("KLINGWATCH_DB", "db")
    )
    time_scale: float = Field(
        default=1.0, gt=0, validation_alias=AliasChoices("KLINGWATCH_TIME_SCALE", "time_scale")
    )

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Settings with ``overrides`` (from flags; ``None`` means "not given") on top."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**given)
