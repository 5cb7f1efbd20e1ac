"""``klingwatch mcp`` as an agent client runs it: a real process spoken to over stdio by the SDK's
own client, a sandbox on a real socket as Kling (100x faster than real time), a real SQLite
ledger file."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextResourceContents

from klingwatch.clock import RealClock
from klingwatch.kling.products import Family
from klingwatch.sandbox import SandboxConfig, serve_in_thread
from klingwatch.store import Ledger, LocalStatus

KEY = "mcp-test-api-key"
SCALE = 0.01
TOOLS = {
    "status",
    "list_tasks",
    "show_task",
    "stuck",
    "spend",
    "submit",
    "retry_failed",
    "wait_for",
}
FOX = {"prompt": "a red fox running through snow", "model_name": "kling-v2-6"}
OWL = {"prompt": "an owl at dusk", "model_name": "kling-v2-6", "duration": "5"}


class World:
    """A sandbox on a socket and where klingwatch keeps its ledger."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.db = tmp_path / "ledger.db"
        self.errlog = tmp_path / "mcp-stderr.txt"

    def env(self) -> dict[str, str]:
        return {
            "KLING_API_KEY": KEY,
            "KLING_API_BASE": self.url,
            "KLINGWATCH_DB": f"sqlite:///{self.db}",
            "KLINGWATCH_TIME_SCALE": str(SCALE),
        }

    def creates(self) -> int:
        """Creates the sandbox was asked for (ground truth, not klingwatch's word)."""
        stats = httpx.get(f"{self.url}/sandbox/stats").json()
        return int(stats["creates"]["created"]) + sum(stats["creates"]["refused"].values())

    def truth(self) -> dict[str, dict[str, Any]]:
        """The sandbox's tasks by external id."""
        tasks = httpx.get(f"{self.url}/sandbox/tasks").json()["tasks"]
        return {t["external_task_id"]: t for t in tasks}

    def ledger_total(self) -> int:
        if not self.db.exists():
            return 0
        with Ledger.open(f"sqlite:///{self.db}", clock=RealClock()) as ledger:
            return sum(ledger.counts().values())

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[ClientSession]:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "klingwatch", "mcp"],
            env=self.env(),
            cwd=str(self.tmp_path),
        )
        with self.errlog.open("a") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                yield session
        assert "Traceback" not in self.errlog.read_text()


def _sandbox(failure_rate: float = 0.0) -> SandboxConfig:
    return SandboxConfig(
        api_keys=(KEY,),
        time_scale=SCALE,
        slots={Family.VIDEO: 50},
        straggler_rate=0.0,
        failure_rate=failure_rate,
        seed=7,
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with serve_in_thread(_sandbox()) as url:
        yield World(url, tmp_path)


@pytest.fixture
def failing_world(tmp_path: Path) -> Iterator[World]:
    with serve_in_thread(_sandbox(failure_rate=0.5)) as url:
        yield World(url, tmp_path)


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured answer of a call that worked."""
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error(result: CallToolResult) -> str:
    """The message of a call that failed (one paragraph, no traceback)."""
    assert result.is_error
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert "Traceback" not in text
    return text


async def test_lists_every_tool_with_its_schemas_and_both_resources(world: World) -> None:
    async with world.session() as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        templates = (await session.list_resource_templates()).resource_templates
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.output_schema is not None, tool.name
        assert tool.description
    submit = tools["submit"].input_schema["properties"]
    assert submit["dry_run"]["default"] is True
    assert submit["confirm"]["default"] is False
    assert tools["list_tasks"].input_schema["properties"]["limit"]["maximum"] == 200
    assert {t.uri_template for t in templates} == {
        "klingwatch://batches/{name}/report",
        "klingwatch://tasks/{name}/timeline",
    }


async def test_a_dry_run_validates_estimates_and_sends_and_writes_nothing(world: World) -> None:
    async with world.session() as session:
        plan = ok(
            await session.call_tool(
                "submit", {"product": "text2video", "batch": "spring", "requests": [FOX, OWL]}
            )
        )
        as_text = ok(
            await session.call_tool(
                "submit",
                {"product": "text2video", "batch": "spring", "requests": json.dumps([FOX, OWL])},
            )
        )
        defaults = ok(await session.call_tool("submit", {"requests": FOX}))
        confirmed_only = ok(
            await session.call_tool(
                "submit",
                {"product": "text2video", "batch": "spring", "requests": FOX, "confirm": True},
            )
        )
    assert plan["dry_run"] is True
    assert plan["sent"] is False
    assert [t["prompt"] for t in plan["tasks"]] == [FOX["prompt"], OWL["prompt"]]
    assert float(plan["estimated_units"]) > 0
    assert "confirm=true" in plan["message"]
    assert as_text["tasks"] == plan["tasks"]
    assert defaults["batch"] == "mcp"
    assert defaults["tasks"][0]["product"] == "text2video"
    # confirm alone does not leave the dry run (the default): it says so.
    assert confirmed_only["sent"] is False
    assert "does nothing while dry_run is true" in confirmed_only["message"]
    assert world.creates() == 0
    assert world.ledger_total() == 0


async def test_a_real_submit_without_confirm_sends_nothing_and_says_how(world: World) -> None:
    async with world.session() as session:
        refused = error(
            await session.call_tool(
                "submit",
                {"product": "text2video", "batch": "b", "requests": [FOX], "dry_run": False},
            )
        )
    assert "nothing was sent" in refused
    assert "dry_run=false, confirm=true" in refused
    assert world.creates() == 0
    assert world.ledger_total() == 0


async def test_a_confirmed_batch_is_created_once_waited_for_and_has_a_timeline(
    world: World,
) -> None:
    args = {"product": "text2video", "batch": "fox", "requests": [FOX, OWL]}
    async with world.session() as session:
        sent = ok(await session.call_tool("submit", {**args, "dry_run": False, "confirm": True}))
        names = [t["external_task_id"] for t in sent["tasks"]]
        waited = ok(await session.call_tool("wait_for", {"tasks": names, "timeout": 60}))
        again = ok(await session.call_tool("submit", {**args, "dry_run": False, "confirm": True}))
        shown = ok(await session.call_tool("show_task", {"task": names[0]}))
        timeline = await session.read_resource(f"klingwatch://tasks/{names[0]}/timeline")
        report = await session.read_resource("klingwatch://batches/fox/report")
        status = ok(await session.call_tool("status", {"batch": "fox"}))
        listed = ok(await session.call_tool("list_tasks", {"batch": "fox", "limit": 1}))
        later = ok(await session.call_tool("list_tasks", {"since_ms": 2**41, "text": "fox"}))
        foxes = ok(await session.call_tool("list_tasks", {"text": "FOX", "sort": "batch"}))

    assert sent["sent"] is True
    assert sent["queued"] == 2
    assert sent["sent_now"] == 2
    assert "klingwatch serve" in sent["message"]
    assert {t["status"] for t in sent["tasks"]} == {"submitted"}
    truth = world.truth()
    assert sorted(truth) == sorted(names)
    assert all(t["creates_seen"] == 1 for t in truth.values())
    assert waited["done"] is True
    assert waited["still_running"] == []
    assert {t["status"] for t in waited["tasks"]} == {"succeed"}
    assert {t["status"] for t in waited["tasks"]} == {truth[n]["status"] for n in names}
    # The same call again adds nothing and sends nothing.
    assert (again["queued"], again["already_queued"], again["sent_now"]) == (0, 2, 0)
    assert world.creates() == 2

    steps = [(e["from_status"], e["to_status"]) for e in shown["timeline"]]
    assert steps[0] == (None, "queued")
    assert steps[-1][1] == "succeed"
    assert "submitted" in {to for _, to in steps}
    assert shown["task"]["task_id"] == truth[names[0]]["task_id"] == sent["tasks"][0]["task_id"]
    assert shown["task"]["result_urls"]

    [content] = timeline.contents
    assert isinstance(content, TextResourceContents)
    assert json.loads(content.text)["timeline"] == shown["timeline"]
    [content] = report.contents
    assert isinstance(content, TextResourceContents)
    assert json.loads(content.text)["status"]["counts"] == {"succeed": 2}

    assert status["counts"] == {"succeed": 2}
    assert [b["name"] for b in status["batches"]] == ["fox"]
    assert (listed["total"], listed["next_offset"], len(listed["items"])) == (2, 1, 1)
    assert later["total"] == 0
    assert [t["external_task_id"] for t in foxes["items"]] == [names[0]]


async def test_bad_arguments_get_a_clear_error_that_says_what_to_fix(world: World) -> None:
    async with world.session() as session:
        bad_line = error(
            await session.call_tool(
                "submit",
                {"product": "text2video", "batch": "b", "requests": [FOX, {"prompt": ""}]},
            )
        )
        bad_product = error(
            await session.call_tool(
                "submit", {"product": "text2banana", "batch": "b", "requests": [FOX]}
            )
        )
        too_many = error(await session.call_tool("list_tasks", {"limit": 500}))
        unknown = error(await session.call_tool("show_task", {"task": "never-made"}))
        too_long = error(await session.call_tool("wait_for", {"tasks": ["x"], "timeout": 601}))
        no_batch = error(await session.call_tool("retry_failed", {"batch": "nope"}))
    assert "request 2: text2video: prompt" in bad_line
    assert "nothing was queued or sent" in bad_line
    assert "text2banana" in bad_product
    assert "limit" in too_many
    assert "200" in too_many
    assert "no task 'never-made'" in unknown
    assert "timeout" in too_long
    assert "600" in too_long
    assert "no batch named 'nope'" in no_batch
    assert world.creates() == 0


async def test_retry_failed_retries_only_failed_tasks_and_only_when_confirmed(
    failing_world: World,
) -> None:
    world = failing_world
    requests = [{"prompt": f"a lighthouse, take {i}", "model_name": "kling-v2-6"} for i in range(8)]
    args = {"product": "text2video", "batch": "lh", "requests": requests}
    async with world.session() as session:
        sent = ok(await session.call_tool("submit", {**args, "dry_run": False, "confirm": True}))
        names = [t["external_task_id"] for t in sent["tasks"]]
        waited = ok(await session.call_tool("wait_for", {"tasks": names, "timeout": 60}))
        failed = {t["external_task_id"] for t in waited["tasks"] if t["status"] == "failed"}
        assert failed
        assert len(failed) < len(names)
        creates = world.creates()
        plan = ok(await session.call_tool("retry_failed", {"batch": "lh"}))
        refused = error(await session.call_tool("retry_failed", {"batch": "lh", "dry_run": False}))
        assert world.creates() == creates
        done = ok(
            await session.call_tool(
                "retry_failed", {"batch": "lh", "dry_run": False, "confirm": True}
            )
        )
    assert {t["external_task_id"] for t in plan["tasks"]} == failed
    assert plan["retried"] is False
    assert float(plan["estimated_units"]) > 0
    assert "confirm=true" in refused
    assert done["retried"] is True
    assert {t["external_task_id"] for t in done["tasks"]} == failed
    assert len(done["new_tasks"]) == len(failed)
    with Ledger.open(f"sqlite:///{world.db}", clock=RealClock()) as ledger:
        queued = ledger.tasks(batch="lh", status=LocalStatus.QUEUED)
    assert {t.external_task_id for t in queued} == set(done["new_tasks"])


async def test_spend_answers_from_the_spend_ledger_and_a_cap_holds_what_would_pass_it(
    world: World,
) -> None:
    capped = {
        "product": "text2video",
        "batch": "capped",
        "requests": [FOX],
        "dry_run": False,
        "confirm": True,
        "max_units": 1,
    }
    async with world.session() as session:
        result = await session.call_tool("spend", {})
        cap = await session.call_tool("submit", capped)
    assert ok(result)["total"]["tasks"] == 0
    # Queued, but a text2video costs more than 1 unit: the cap holds it, Kling saw no create.
    assert ok(cap)["queued"] == 1
    assert "held by the batch's budget cap" in ok(cap)["message"]
    assert world.creates() == 0
    assert world.ledger_total() == 1
