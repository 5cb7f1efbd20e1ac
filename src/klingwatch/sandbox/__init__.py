"""Kling played offline: the test fake, the demo's backend and the benchmark's opponent.

Speaks KLING_PROTOCOL.md (legacy ``/v1/...`` and the new ``/tasks`` standard) on a controllable
clock, with chaos knobs, scripted answers, real result files and its ground truth on
``/sandbox/...``. What it sends is written by :mod:`klingwatch.kling.models` and
:mod:`klingwatch.kling.envelope`, the same code the client reads with::

    from klingwatch.sandbox import SandboxConfig, SandboxTransport, create_app, serve_in_thread

    app = create_app(SandboxConfig(api_keys=("k",)), clock=ManualClock())  # in process,
    transport = SandboxTransport(app)                     # for KlingClient(transport=...)
    app.state.sandbox.script.on_create("line-7", "created-then-500")  # a scripted answer
    with serve_in_thread(SandboxConfig(time_scale=0.01)) as base_url: ...  # a real socket
"""

from klingwatch.sandbox.app import create_app
from klingwatch.sandbox.chaos import CHAOS_PROFILES, ChaosConfig, parse_chaos
from klingwatch.sandbox.config import SandboxConfig, TimingSpec
from klingwatch.sandbox.delivery import SandboxTransport
from klingwatch.sandbox.runtime import Sandbox
from klingwatch.sandbox.script import Answer, Script, ScriptConfig
from klingwatch.sandbox.server import serve, serve_in_thread

__all__ = [
    "CHAOS_PROFILES",
    "Answer",
    "ChaosConfig",
    "Sandbox",
    "SandboxConfig",
    "SandboxTransport",
    "Script",
    "ScriptConfig",
    "TimingSpec",
    "create_app",
    "parse_chaos",
    "serve",
    "serve_in_thread",
]
