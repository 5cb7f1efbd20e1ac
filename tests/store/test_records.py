"""The ledger's vocabulary (klingwatch.store.records) and what klingwatch.store exports."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import klingwatch.store
from klingwatch.store import ACTIVE_STATUSES, FINAL_STATUSES, LocalStatus

S = LocalStatus


def test_statuses_are_ranked_queued_unknown_submitted_processing_final() -> None:
    assert [s.rank for s in (S.QUEUED, S.UNKNOWN, S.SUBMITTED, S.PROCESSING)] == [0, 1, 2, 3]
    assert S.SUCCEED.rank == S.FAILED.rank == S.REJECTED.rank == 4


def test_final_and_active_statuses() -> None:
    assert (
        {s for s in LocalStatus if s.is_final}
        == FINAL_STATUSES
        == {
            S.SUCCEED,
            S.FAILED,
            S.REJECTED,
        }
    )
    assert (
        {s for s in LocalStatus if s.is_active}
        == ACTIVE_STATUSES
        == {
            S.UNKNOWN,
            S.SUBMITTED,
            S.PROCESSING,
        }
    )
    assert not S.QUEUED.is_active
    assert not S.QUEUED.is_final


def test_statuses_use_kling_spelling() -> None:
    assert LocalStatus("succeed") is S.SUCCEED


def test_store_exports_exactly_its_public_names() -> None:
    public = {
        name
        for name, value in vars(klingwatch.store).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(klingwatch.store.__all__)
    assert len(klingwatch.store.__all__) == len(set(klingwatch.store.__all__))


def test_store_never_imports_kling_or_anything_above_it() -> None:
    root = Path(klingwatch.store.__file__).parent
    forbidden = ("klingwatch.kling", "klingwatch.monitor", "klingwatch.server", "klingwatch.cli")
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
