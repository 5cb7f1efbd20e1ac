"""A batch with a budget cap stops at its cap, against the sandbox: what Kling saw is the truth."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from submit_world import intents, sandbox_config, sandbox_world

from klingwatch.operations.core import with_estimate
from klingwatch.store import LocalStatus


async def test_a_capped_batch_sends_only_what_its_cap_allows_and_the_rest_wait_held(
    tmp_path: Path,
) -> None:
    async with sandbox_world(tmp_path, sandbox_config(4, failure_rate=0.0)) as w:
        # text2video std 5 s: 1 unit each by the estimate table; a cap of 7.5 lets 7 go.
        tasks = [with_estimate(t) for t in intents(12)]
        assert {t.units_estimated for t in tasks} == {"1"}
        w.ledger.ensure_batch("b1")
        w.ledger.set_cap("b1", Decimal("7.5"))
        w.queue(tasks)
        submitter = w.submitter(slots={"video": 4}, create_concurrency=4)
        await w.monitor(submitter).run()  # until_done: held tasks do not keep it running

        assert len(w.creates_seen()) == 7  # Kling saw exactly the creates the cap allowed
        counts = w.ledger.counts(batch="b1")
        assert counts[LocalStatus.SUCCEED] == 7
        assert counts[LocalStatus.QUEUED] == 5
        held = w.ledger.tasks(status=LocalStatus.QUEUED)
        assert {t.hold_reason for t in held} == {"held: budget cap 7.5 units, 7 sent"}
        assert all(t.send_attempts == 0 for t in held)
        assert submitter.stats.held >= 5

        # Raising the cap lets the rest go, and only them.
        w.ledger.set_cap("b1", Decimal(12))
        await w.monitor(w.submitter(slots={"video": 4}, create_concurrency=4)).run()
        assert w.ledger.counts(batch="b1")[LocalStatus.SUCCEED] == 12
        assert len(w.creates_seen()) == 12
        assert set(w.creates_seen().values()) == {1}
