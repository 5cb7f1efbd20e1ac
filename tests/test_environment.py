"""The library's own environment contract, and the layers it keeps apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import klingwatch
from klingwatch.environment import (
    DEFAULT_API_BASE,
    absolute_db_url,
    kling_api_base,
    kling_credentials,
    ledger_url,
)


def test_kling_variables_are_stripped_and_blank_means_unset() -> None:
    env = {"KLING_ACCESS_KEY": " ak\n", "KLING_SECRET_KEY": "   ", "KLING_API_BASE": ""}
    assert kling_credentials(env) == {"access_key": "ak", "secret_key": None, "api_key": None}
    assert kling_api_base(env) == DEFAULT_API_BASE
    assert kling_api_base({"KLING_API_BASE": "http://sandbox:8000"}) == "http://sandbox:8000"


def test_the_ledger_url_is_the_argument_else_klingwatch_db_else_the_default_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"KLINGWATCH_DB": "postgresql+psycopg://kw@db/kw"}
    assert ledger_url("sqlite://", env) == "sqlite://"
    assert ledger_url(None, env) == "postgresql+psycopg://kw@db/kw"
    assert ledger_url(None, {}) == f"sqlite:///{tmp_path / 'klingwatch.db'}"
    assert ledger_url("sqlite:///sub/k.db", {}) == f"sqlite:///{tmp_path / 'sub' / 'k.db'}"


def test_urls_that_are_not_relative_sqlite_files_are_left_as_they_are() -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:////abs/k.db", "not a url"):
        assert absolute_db_url(url) == url


SRC = Path(klingwatch.__file__).parent
#: The bottom layer: everyone may import it; it imports nothing of klingwatch.
BOTTOM = (
    "klingwatch.clock",
    "klingwatch.errors",
    "klingwatch.environment",
    "klingwatch.timestamps",
)
#: Layers that import only themselves and the bottom (DESIGN.md: kling and store never import
#: each other nor anything above them; settings is for the command line and the engine, and a
#: library client or ledger never reads it).
SELF_CONTAINED = ("klingwatch.kling", "klingwatch.store", "klingwatch.settings")


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _within(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def crossings(src: Path, layer: str) -> dict[str, set[str]]:
    """{module of ``layer``: the klingwatch modules it imports that it may not}."""
    allowed = () if layer in BOTTOM else (layer, *BOTTOM)
    wrong: dict[str, set[str]] = {}
    for path in sorted(src.rglob("*.py")):
        module = _module(path)
        if _within(module, layer):
            ours = {m for m in _imports(path) if _within(m, "klingwatch")}
            bad = {m for m in ours if not any(_within(m, ok) for ok in allowed)}
            if bad:
                wrong[module] = bad
    return wrong


@pytest.mark.parametrize("layer", [*BOTTOM, *SELF_CONTAINED])
def test_each_layer_imports_only_itself_and_the_bottom(layer: str) -> None:
    assert crossings(SRC, layer) == {}


def test_no_module_imports_what_only_some_platforms_have() -> None:
    # `klingwatch --help` must start on Windows too: file locks come from filelock.
    for path in sorted(SRC.rglob("*.py")):
        assert not _imports(path) & {"fcntl", "msvcrt", "termios", "pwd", "grp"}, path
