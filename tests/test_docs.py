"""The documentation's examples run as written, and the CLI reference matches the commands."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from klingwatch.cli.reference import render

ROOT = Path(__file__).resolve().parent.parent
RUNNABLE = [ROOT / "docs" / "python-api.md", ROOT / "docs" / "alerts.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _examples() -> list[tuple[str, str]]:
    found = []
    for doc in RUNNABLE:
        for number, match in enumerate(BLOCK.finditer(doc.read_text()), start=1):
            found.append((f"{doc.name}#{number}", match.group(1)))
    return found


@pytest.mark.parametrize(("where", "code"), _examples(), ids=[w for w, _ in _examples()])
def test_documented_example_runs(
    where: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "example.py"
    script.write_text(code)
    runpy.run_path(str(script), run_name="__main__")


def test_the_cli_reference_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == render(), (
        "docs/cli.md is out of date: run `make docs` (python -m klingwatch.cli.reference)"
    )


def _commands(script: str) -> list[str]:
    lines = (line.split("#")[0].strip() for line in script.splitlines())
    return [line for line in lines if line]


def test_the_readmes_test_command_is_what_ci_runs_and_it_starts_the_services() -> None:
    readme = (ROOT / "README.md").read_text()
    opening = readme[: readme.index("\n## ")]
    ci = _commands((ROOT / ".ci" / "run").read_text())
    recipe = re.search(r"^test:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)

    assert "make test" in _commands(opening), "the README no longer opens with `make test`"
    assert ci[-1] == "make test", ".ci/run must end by running the README's `make test`"
    assert all(not c.startswith(("export ", "apt-get", "runuser")) for c in ci), (
        ".ci/run prepares nothing itself: `make test` starts what the tests need"
    )
    assert recipe is not None
    assert recipe.group(1) == "$(BIN)/python tests/services.py $(PYTEST_ARGS)"
