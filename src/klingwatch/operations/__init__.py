"""klingwatch.operations: what klingwatch can be asked to do, written once for every face.

The command line (:mod:`klingwatch.cli`), the web server's API and dashboard actions
(:mod:`klingwatch.server`) and the agents' MCP server all call this layer, so a retry, a track or
a resume changes the ledger in exactly the same way whoever asked, and the engine is built from
the settings in one place::

    async with Operations.open(settings) as ops:        # the ledger (async), a client, a clock
        result = await ops.track("text2video", ["8668894566..."], batch="tracked")
        engine = ops.engine(until_done=True)            # submitter, downloads, as configured
        await engine.run()

Layers: this package uses :mod:`klingwatch.monitor`, :mod:`klingwatch.store` and
:mod:`klingwatch.kling`; nothing below imports it.
"""

from klingwatch.operations.core import Operations, client_from, clock_from
from klingwatch.operations.queries import (
    BatchStatus,
    Status,
    StatusReport,
    TaskDetail,
    TaskPage,
    TaskQuery,
    WaitResult,
)
from klingwatch.operations.results import (
    BatchReport,
    BudgetResult,
    NotifyResult,
    ResumeResult,
    RetryResult,
    SpendReport,
    SpendRow,
    TrackResult,
)
from klingwatch.operations.spend import SpendRequestError

__all__ = [
    "BatchReport",
    "BatchStatus",
    "BudgetResult",
    "NotifyResult",
    "Operations",
    "ResumeResult",
    "RetryResult",
    "SpendReport",
    "SpendRequestError",
    "SpendRow",
    "Status",
    "StatusReport",
    "TaskDetail",
    "TaskPage",
    "TaskQuery",
    "TrackResult",
    "WaitResult",
    "client_from",
    "clock_from",
]
