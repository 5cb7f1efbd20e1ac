"""bench/replicas.py's table: one row per replica count, a failed run shown as failed."""

import math
from dataclasses import asdict
from typing import Any

from replicas import Setting, markdown


def _row(replicas: int, *, final: int, tasks: int = 100) -> dict[str, Any]:
    setting = Setting(replicas, tasks, slots=20, latency_ms=20, scale=0.05)
    return {
        "setting": asdict(setting),
        "final": final,
        "all_final": final == tasks,
        "slot_utilisation": 0.951,
        "requests_per_task": 1.234,
        "reads_per_task": 0.234,
        "answers_1303": 0,
        "peak_slots": 20,
        "ledger": {"transactions_per_second": 310.4, "events_per_second": 27.6},
        "lag_nominal": {"p95": 7.06},
        "wall_seconds": math.nan,
        "replica_cpu_seconds": [2.0, 3.5],
        "replica_peak_rss_mb": [120.0, 126.4],
        "tasks_per_external_id_max": 1,
        "creates_per_external_id_max": 1,
    }


def _results(*rows: dict[str, Any], note: str = "") -> dict[str, Any]:
    return {
        "command": "make bench-replicas",
        "date": "2026-12-02 17:00 UTC",
        "machine": {"cores": "2", "cpu": "a CPU", "python": "3.11.7"},
        "postgres": "15.18",
        "note": note,
        "bench_seconds": 120.0,
        "runs": list(rows),
    }


def test_each_replica_count_is_one_row_with_its_figures() -> None:
    text = markdown(_results(_row(1, final=100), _row(2, final=100)))
    rows = [line for line in text.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(rows) == 2
    assert "| 95.1 % | 1.23 | 0.23 | 0 | 20/20 | 310 | 28 | 7.1 | n/a | 6 | 126 |" in rows[1]
    assert rows[1].endswith("| yes (100) |")
    assert "`make bench-replicas`" in text


def test_a_run_that_did_not_finish_says_no_and_the_note_is_shown() -> None:
    text = markdown(_results(_row(4, final=97), note="2000 tasks: 10000 did not fit."))
    assert "| NO (97) |" in text
    assert "2000 tasks: 10000 did not fit." in text
