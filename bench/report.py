"""RESULTS.md and PNG plots from the driver's results (bench/run.py), with each target judged.

.venv/bin/python bench/report.py bench/results/results.json   # redraw from saved results
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

BASELINES = ("recipe-per-task", "recipe-sweep")
KLINGWATCH = ("kw-polling", "kw-callbacks")
MODEL = "per-task cadence, unhindered (model)"


def _f(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _label(w: dict[str, Any]) -> str:
    return f"{w['tasks']} tasks, {w['latency_ms']} ms, {w['slots']} slots"


def group(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Runs by workload label, then by contestant, in the order they ran."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        out.setdefault(_label(run["workload"]), {})[run["contestant"]] = run
    return out


def table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The Markdown table of one workload, with the unhindered per-task model as the last row."""
    lines = [
        "| contestant | final | requests | req/task | reads/task | 1303 | 1303 after the first | "
        "lag p50 / p95 / max (nominal s) | lag p95 (real s) | wall (s) | slot use | "
        "CPU (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    tasks = 0
    model: dict[str, Any] | None = None
    for name, r in rows.items():
        tasks = r["workload"]["tasks"]
        lag, real = r["lag_nominal"], r["lag_real"]
        cpu = _f(r.get("cpu_seconds")) if name in KLINGWATCH else f"({_f(r.get('cpu_seconds'))})"
        rss = _f(r.get("peak_rss_mb"), 0) if name in KLINGWATCH else "-"
        lines.append(
            f"| {name} | {r['finished']}/{tasks} | {r['requests']:,} | "
            f"{_f(r['requests_per_task'], 2)} | {_f(r['reads_per_task'], 2)} | "
            f"{r['answers_1303']:,} | "
            f"{_f(r['late_1303_pct'])} % | {_f(lag['p50'])} / {_f(lag['p95'])} / "
            f"{_f(lag['max'])} | {_f(real['p95'], 2)} | {_f(r['wall_seconds'], 0)} | "
            f"{_f(100 * r['slot_utilisation'])} % | {cpu} | {rss} |"
        )
        model = model or r["ideal_per_task"]
    if model is not None:
        lines.append(
            f"| *{MODEL}* | - | - | {_f(model['requests_per_task'], 2)} | "
            f"{_f(model['requests_per_task'] - 1, 2)} | - | - | "
            f"{_f(model['lag_p50'])} / {_f(model['lag_p95'])} / - | - | - | - | - | - |"
        )
    return lines


def short_table(results: dict[str, Any]) -> list[str]:
    """One line per run: the few figures the README shows."""
    lines = [
        "| workload | contestant | req/task | reads/task | p95 lag (nominal s) | slot use |",
        "|---|---|---|---|---|---|",
    ]
    for label, rows in group(results["runs"]).items():
        for name, r in rows.items():
            done = "" if r["finished"] == r["workload"]["tasks"] else f" ({r['finished']} final)"
            lines.append(
                f"| {label} | {name}{done} | {_f(r['requests_per_task'], 2)} | "
                f"{_f(r['reads_per_task'], 2)} | {_f(r['lag_nominal']['p95'])} | "
                f"{_f(100 * r['slot_utilisation'], 0)} % |"
            )
    return lines


def _verdict(met: bool, text: str) -> str:
    return f"- **{'met' if met else 'MISSED'}**: {text}"


def targets(rows: dict[str, dict[str, Any]]) -> list[str]:
    """One line per target of issues 4, 5 and 9 for one workload: met or missed, by how much."""
    out: list[str] = []
    base = [rows[n] for n in BASELINES if n in rows]
    polling, callbacks = rows.get("kw-polling"), rows.get("kw-callbacks")
    model = next(iter(rows.values()))["ideal_per_task"]
    if polling and base:
        # Against the baseline that sent the fewest requests (the hardest comparison), then
        # the polling reads alone (issue 4's target is about polling; a create is a create).
        fewest = min(base, key=lambda r: r["requests_per_task"])
        ratio = polling["requests_per_task"] / fewest["requests_per_task"]
        out.append(
            _verdict(
                ratio <= 0.1,
                f"all requests per task <= 1/10 of the baseline's: klingwatch polling "
                f"{_f(polling['requests_per_task'], 2)} vs {fewest['contestant']} "
                f"{_f(fewest['requests_per_task'], 2)} = 1/{_f(1 / ratio)}"
                + ("" if ratio <= 0.1 else f" ({_f(ratio / 0.1, 2)}x the target)"),
            )
        )
        fewest = min(base, key=lambda r: r["reads_per_task"])
        ratio = polling["reads_per_task"] / fewest["reads_per_task"]
        out.append(
            _verdict(
                ratio <= 0.1,
                f"polling reads per task <= 1/10 of the measured baseline's: "
                f"{_f(polling['reads_per_task'], 2)} vs {fewest['contestant']} "
                f"{_f(fewest['reads_per_task'], 2)} = 1/{_f(1 / ratio)}"
                + ("" if ratio <= 0.1 else f" ({_f(ratio / 0.1, 2)}x the target)"),
            )
        )
        model_reads = model["requests_per_task"] - 1.0
        ratio = polling["reads_per_task"] / model_reads
        out.append(
            _verdict(
                ratio <= 0.1,
                f"polling reads per task <= 1/10 of the unhindered per-task cadence's: "
                f"{_f(polling['reads_per_task'], 2)} vs {_f(model_reads, 2)} = 1/{_f(1 / ratio)}"
                + ("" if ratio <= 0.1 else f" ({_f(ratio / 0.1, 2)}x the target)"),
            )
        )
        medians = [(r["lag_nominal"]["p50"], r["contestant"]) for r in base]
        medians.append((model["lag_p50"], "the unhindered per-task model"))
        best, who = min((m for m in medians if not math.isnan(m[0])), default=(math.nan, "-"))
        p95 = polling["lag_nominal"]["p95"]
        out.append(
            _verdict(
                p95 <= best,
                f"polling p95 lag <= the baseline's median: {_f(p95)} s vs {_f(best)} s "
                f"({who}; nominal seconds)" + ("" if p95 <= best else f", {_f(p95 - best)} s over"),
            )
        )
    if callbacks:
        p95_real = callbacks["lag_real"]["p95"]
        out.append(
            _verdict(
                p95_real < 1.0,
                f"callbacks p95 lag under 1 s real: {_f(p95_real, 2)} s"
                + ("" if p95_real < 1.0 else f" ({_f(p95_real - 1.0, 2)} s over)"),
            )
        )
    for r in (polling, callbacks):
        if r is None:
            continue
        use = r["slot_utilisation"]
        out.append(
            _verdict(
                use >= 0.95,
                f"{r['contestant']}: slot use while work was queued >= 95 %: {_f(100 * use)} %"
                + ("" if use >= 0.95 else f" ({_f(95 - 100 * use)} points short)"),
            )
        )
        late = r["late_1303_pct"]
        out.append(
            _verdict(
                late < 1.0,
                f"{r['contestant']}: creates answered 1303 once the slot count is learned < 1 %: "
                f"{_f(late, 2)} % ({r['answers_1303']} of {r['creates']} creates, the first "
                "one teaching the count)",
            )
        )
    return out


def _bars(
    grouped: dict[str, dict[str, dict[str, Any]]],
    value: Callable[[dict[str, Any]], float],
    ylabel: str,
    title: str,
    path: Path,
    *,
    log_scale: bool = True,
) -> None:
    labels = list(grouped)
    names = [n for n in (*BASELINES, *KLINGWATCH) if any(n in g for g in grouped.values())]
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(labels)), 4.2))
    for i, name in enumerate(names):
        xs = [j + i * width for j, label in enumerate(labels) if name in grouped[label]]
        ys = [value(grouped[label][name]) for label in labels if name in grouped[label]]
        ax.bar(xs, ys, width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(labels))])
    ax.set_xticklabels([label.replace(", ", "\n", 1) for label in labels], fontsize=8)
    if log_scale:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plots(results: dict[str, Any], folder: Path, stem: str) -> list[str]:
    """Requests per task, p95 lag and slot use by workload and contestant; the files' names."""
    grouped = group(results["runs"])
    files = [f"{stem}-requests.png", f"{stem}-lag.png", f"{stem}-slots.png"]
    _bars(
        grouped,
        lambda r: r["requests_per_task"],
        "requests per task (log)",
        "Requests sent per task (sandbox's count)",
        folder / files[0],
    )
    _bars(
        grouped,
        lambda r: max(r["lag_nominal"]["p95"], 0.01),
        "p95 detection lag, nominal s (log)",
        "p95 detection lag (detected - Kling's updated_at)",
        folder / files[1],
    )
    _bars(
        grouped,
        lambda r: 100 * r["slot_utilisation"],
        "% of slots busy while work was queued",
        "Slot utilisation",
        folder / files[2],
        log_scale=False,
    )
    return files


NOTES = """\
How to read this:

* Every contestant runs against its own fresh `klingwatch sandbox` process with the same seed,
  time scale, video slot limit and injected latency (`--chaos nominal:N`: N *nominal*
  milliseconds, scaled with the clock like every Kling duration, so 200 ms at scale 0.05 waits
  10 real ms; runs before 2026-12-02 injected real milliseconds, `--chaos latency:N`).
  Requests, 1303 answers and slot use are the sandbox's own counts (`/sandbox/stats`,
  `/sandbox/slots`), so every contestant is counted the same way.
* Lag is detected - Kling's `updated_at` of the final status, per task; nominal seconds are real
  seconds divided by the time scale. klingwatch's from `klingwatch export --format json`
  (`detected_at - kling_updated_at`), the recipe's from its own JSON.
* The time scale shrinks every Kling duration, the recipe's 10-30 s cadences and the injected
  latency alike, but not the time a process needs to build and parse a request (CPU). A
  sequential loop is still somewhat busier than at real speed (see its `busy` share below). The
  *unhindered per-task cadence* row is the recipe's cadence computed from the same tasks' real
  lifecycles with no time lost to requests; the targets are judged against whichever baseline
  figure is hardest to beat.
* Requests are every request the sandbox answered; reads/task counts only the reads answered 200
  (every GET, and `POST /tasks`: the polling itself). Wall (s) is real seconds from the first
  create the sandbox saw to the last final status the contestant detected.
* Slot use is the share of the video slots busy from the first create to the last create (while
  work was waiting for a slot). "1303 after the first" is the share of creates answered 1303
  beyond the first (the answer that teaches a client the slot count).
* CPU (s) and peak RSS are of the klingwatch process(es) (`os.wait4`): `submit --wait`, or
  `serve` + `submit` (CPU summed, RSS the larger). The recipe's CPU is shown in parentheses.
* The baseline recipe (bench/recipe.py) sends every prompt at once, then each pass of resends
  stops at its first 1303; it is not tuned down.
"""


def write(results: dict[str, Any], folder: Path, stem: str) -> Path:
    """Write ``<stem>.md`` (RESULTS.md for the full run) and the plots into ``folder``."""
    grouped = group(results["runs"])
    files = plots(results, folder, stem)
    m = results["machine"]
    lines = [
        "# klingwatch benchmarks" + (" (quick)" if stem != "results" else ""),
        "",
        f"Command: `{results['command']}`  ",
        *[f"{note}  " for note in results.get("notes", [])],
        f"Date: {results['date']}  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, Python {m['python']} "
        f"({m['os']})  ",
        f"Time scale: {results['scale']} (a nominal 10 s is {10 * results['scale']:g} real s), "
        f"the same for every contestant. Whole run: {results['bench_seconds'] / 60:.1f} min.",
        "",
        NOTES,
    ]
    for label, rows in grouped.items():
        lines += ["", f"## {label}", "", *table(rows), ""]
        busy = [
            f"{n} busy {100 * r['extra']['busy_seconds'] / r['process_seconds']:.0f} % of its wall "
            "time inside HTTP calls"
            for n, r in rows.items()
            if r["extra"].get("busy_seconds") and r["process_seconds"]
        ]
        if busy:
            lines += ["Baseline: " + "; ".join(busy) + ".", ""]
        lines += ["Targets:", "", *targets(rows)]
    sizes = {r["workload"]["tasks"] for r in results["runs"]}
    skipped = [
        f"{', '.join(names)} at {tasks} tasks"
        for tasks, names in results.get("skipped", {}).items()
        if int(tasks) in sizes
    ]
    if skipped:
        lines += [
            "",
            "Not run, to keep the whole bench near 40 minutes on this machine: "
            + "; ".join(skipped)
            + ".",
        ]
    rate = results["ledger_observations_per_second"]
    lines += [
        "",
        "## Across workloads",
        "",
        _verdict(
            rate >= 5000,
            f"ledger apply >= 5000 observations/s on SQLite: {rate:,.0f}/s "
            "(bench/bench_ledger.py: 5000 tasks, 50000 observations, batches of 500)",
        ),
    ]
    big = [
        r
        for r in results["runs"]
        if r["workload"]["tasks"] >= 10000 and r["contestant"] in KLINGWATCH and "peak_rss_mb" in r
    ]
    if big:
        worst = max(big, key=lambda r: r["peak_rss_mb"])
        lines.append(
            _verdict(
                worst["peak_rss_mb"] < 300,
                f"10000 tracked tasks under 300 MB RSS: {worst['peak_rss_mb']:.0f} MB "
                f"({worst['contestant']}, the larger klingwatch process)",
            )
        )
    else:
        lines.append("- not measured in this run: 10000 tracked tasks under 300 MB RSS")
    lines += ["", *[f"![{f}]({f})" for f in files], ""]
    path = folder / ("RESULTS.md" if stem == "results" else f"{stem}.md")
    path.write_text("\n".join(lines))
    return path


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/results.json")
    data = json.loads(source.read_text())
    print(write(data, source.parent, source.stem))
    if "--short" in sys.argv:
        print("\n".join(short_table(data)))
