"""The public API is declared once, in klingwatch.__all__ (as httpx does)."""

import types

import klingwatch


def test_nothing_leaks_and_nothing_is_missing() -> None:
    public = {
        name
        for name, value in vars(klingwatch).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(klingwatch.__all__) - {"__version__"}
    assert len(klingwatch.__all__) == len(set(klingwatch.__all__))


def test_every_exported_name_resolves() -> None:
    for name in klingwatch.__all__:
        assert getattr(klingwatch, name) is not None


def test_version_is_the_installed_distribution() -> None:
    from importlib.metadata import version

    assert klingwatch.__version__ == version("klingwatch")
