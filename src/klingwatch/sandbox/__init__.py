"""Kling played offline: the test fake, the demo's backend and the benchmark's opponent.

Speaks KLING_PROTOCOL.md (legacy ``/v1/...`` and the new ``/tasks`` standard) on a controllable
clock, with chaos knobs, real result files and its ground truth on ``/sandbox/...``::

    from klingwatch.sandbox import SandboxConfig, create_app, serve_in_thread

    app = create_app(SandboxConfig(api_keys=("k",)), clock=ManualClock())   # in-process
    with serve_in_thread(SandboxConfig(time_scale=0.01)) as base_url: ...   # real socket
"""

from klingwatch.sandbox.app import create_app
from klingwatch.sandbox.chaos import CHAOS_PROFILES, ChaosConfig, parse_chaos
from klingwatch.sandbox.config import SandboxConfig, TimingSpec
from klingwatch.sandbox.runtime import Sandbox
from klingwatch.sandbox.server import serve, serve_in_thread

__all__ = [
    "CHAOS_PROFILES",
    "ChaosConfig",
    "Sandbox",
    "SandboxConfig",
    "TimingSpec",
    "create_app",
    "parse_chaos",
    "serve",
    "serve_in_thread",
]
