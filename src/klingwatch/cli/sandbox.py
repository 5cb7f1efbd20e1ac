"""``klingwatch sandbox``: run Kling offline on a local port."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

import typer
from pydantic import ValidationError

from klingwatch.cli.app import app
from klingwatch.cli.listen import listening_socket
from klingwatch.kling.products import Family
from klingwatch.sandbox.chaos import CHAOS_PROFILES, parse_chaos
from klingwatch.sandbox.config import SandboxConfig
from klingwatch.sandbox.server import serve

__all__ = ["parse_settings", "parse_slots", "sandbox_command"]


SET_OPTION: Any = typer.Option(
    None,
    "--set",
    help="Any other SandboxConfig field as name=value (JSON values allowed), e.g. "
    "--set callback_drop_rate=0.1 --set list_order=oldest.",
)


def parse_slots(spec: str | None) -> dict[Family, int]:
    """``"video=5,image=10,try_on=2"`` as slots per family (unnamed families keep defaults)."""
    out: dict[Family, int] = {}
    for item in filter(None, (p.strip() for p in (spec or "").split(","))):
        name, _, value = item.partition("=")
        try:
            family = Family(name.strip().replace("-", "_"))
            out[family] = int(value)
        except ValueError:
            families = ", ".join(f.value for f in Family)
            raise typer.BadParameter(
                f"{item!r}: use family=count with family one of {families} (e.g. video=5)",
                param_hint="--slots",
            ) from None
    return out


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``--set name=value`` items as config fields; values are JSON when they parse as JSON."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in SandboxConfig.model_fields:
            raise typer.BadParameter(
                f"{item!r}: use name=value with a SandboxConfig field name "
                "(see docs/sandbox.md), e.g. callback_drop_rate=0.1",
                param_hint="--set",
            )
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


def _units(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not a number", param_hint="--units") from None


@app.command("sandbox")
def sandbox_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8787, "--port", help="Port to listen on."),
    time_scale: float = typer.Option(
        1.0, "--time-scale", help="Multiply every duration (0.01: a 60 s task takes 0.6 s)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of every random draw (repeatable runs)."),
    slots: str | None = typer.Option(
        None, "--slots", help="Concurrency per pack type, e.g. video=5,image=10,try_on=2."
    ),
    units: str | None = typer.Option(
        None, "--units", help="Resource-pack units; past them creates answer 1102."
    ),
    failure_rate: float = typer.Option(0.05, "--failure-rate", help="Share of tasks that fail."),
    callbacks: str = typer.Option(
        "all", "--callbacks", help="Which transitions are called back: all or terminal."
    ),
    envelope: str = typer.Option(
        "flat", "--callback-envelope", help="Legacy callback body: flat or enveloped."
    ),
    webhook_secret: str | None = typer.Option(
        None, "--webhook-secret", help="Sign callbacks (Standard Webhooks) with this whsec_ secret."
    ),
    chaos: str | None = typer.Option(
        None,
        "--chaos",
        help=f"Fault profile ({', '.join(CHAOS_PROFILES)}) or spec such as "
        "'5000:0.05,1302:0.02,created:0.01,drop:0.01,truncate:0.01,latency:50+100'.",
    ),
    not_found: str = typer.Option(
        "1201", "--not-found", help="Unknown task id answers 1201 (400, seen live) or 1203 (404)."
    ),
    access_key: str | None = typer.Option(
        None, "--access-key", envvar="KLING_ACCESS_KEY", help="AccessKey accepted for JWTs."
    ),
    secret_key: str | None = typer.Option(
        None, "--secret-key", envvar="KLING_SECRET_KEY", help="SecretKey that signs the JWTs."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="KLING_API_KEY", help="API key accepted (new standard too)."
    ),
    extra: list[str] | None = SET_OPTION,
) -> None:
    """Run a Kling sandbox: both API standards, callbacks, chaos, ground truth on /sandbox/."""
    if bool(access_key) != bool(secret_key):
        raise typer.BadParameter(
            "give both --access-key and --secret-key (or KLING_ACCESS_KEY and KLING_SECRET_KEY)"
        )
    demo = not (access_key or api_key)
    if demo:
        access_key = f"sandbox-ak-{secrets.token_hex(4)}"
        secret_key = secrets.token_urlsafe(24)
        api_key = f"sandbox-{secrets.token_urlsafe(18)}"
    try:
        chaos_config = parse_chaos(chaos)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--chaos") from None
    fields: dict[str, Any] = {
        "access_keys": {access_key: secret_key} if access_key and secret_key else {},
        "api_keys": (api_key,) if api_key else (),
        "time_scale": time_scale,
        "seed": seed,
        "slots": parse_slots(slots),
        "unit_budget": _units(units),
        "failure_rate": failure_rate,
        "callbacks": callbacks,
        "callback_envelope": envelope,
        "webhook_secret": webhook_secret,
        "chaos": chaos_config,
        "not_found": not_found,
    }
    fields.update(parse_settings(extra or []))
    try:
        config = SandboxConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise typer.BadParameter(problems) from None
    # Bound before anything is printed: a port in use is one line, not a page of uvicorn log.
    sock = listening_socket(host, port)
    port = int(sock.getsockname()[1])
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    if demo:
        typer.echo("No credentials given; this sandbox accepts a demo pair. To use it:\n")
        typer.echo(f"  export KLING_ACCESS_KEY={access_key}")
        typer.echo(f"  export KLING_SECRET_KEY={secret_key}")
        typer.echo(f"  export KLING_API_KEY={api_key}")
    else:
        typer.echo("Point klingwatch at this sandbox with:\n")
    typer.echo(f"  export KLING_API_BASE={base}\n")
    typer.echo(f"Ground truth: {base}/sandbox/stats, {base}/sandbox/tasks, {base}/sandbox/slots")
    with sock:
        serve(config, host, port, sock=sock)
