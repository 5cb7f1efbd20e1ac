"""No cross-site writes, no DNS rebinding: what a hostile page can make a browser send is refused.

The app runs under uvicorn on a real loopback socket without an API token (the open, loopback
setup a newcomer has). Requests are sent the way a browser would send them from another site: a
form POST with ``Origin: https://evil.example``, a ``text/plain`` fetch, a request whose ``Host``
is the attacker's rebound name. Each must be refused with a reason, and nothing may be queued.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serverkit import CALLBACK_TOKEN, ThreadedServer, add_task, end_task, legacy_body, raw

from klingwatch.clock import RealClock
from klingwatch.server.guard import HostPolicy, host_of
from klingwatch.store import Ledger, LocalStatus

EVIL = "https://evil.example"


@pytest.fixture
def real_ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=RealClock()) as opened:
        yield opened


@pytest.fixture
def failed_task(real_ledger: Ledger) -> int:
    """A failed task: retrying it would queue (and later pay for) a new one."""
    local = add_task(real_ledger, 1, prompt="a kite over the sea")
    end_task(real_ledger, local, LocalStatus.FAILED, msg="internal error")
    return local


def count(ledger: Ledger) -> int:
    return len(ledger.tasks())


def test_a_form_post_from_another_site_queues_nothing(
    real_ledger: Ledger, failed_task: int
) -> None:
    with ThreadedServer(real_ledger) as base:
        answer = httpx.post(
            f"{base}/api/tasks/b1-1/retry",
            data={"force": "true"},
            headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        )
        origin_only = httpx.post(f"{base}/api/tasks/b1-1/retry", headers={"Origin": EVIL})
        null_origin = httpx.post(f"{base}/api/resume", headers={"Origin": "null"})
        sibling = httpx.post(
            f"{base}/api/tasks/b1-1/retry",
            json={},
            headers={"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"},
        )
    assert answer.status_code == 403
    assert answer.json()["detail"].startswith("cross-site request refused")
    assert origin_only.status_code == 403
    assert origin_only.json()["detail"] == (
        f"cross-origin request refused (Origin: {EVIL}): use the dashboard"
    )
    assert null_origin.status_code == 403
    assert sibling.status_code == 403  # another port of this host is another origin
    assert count(real_ledger) == 1  # the failed task alone: nothing was queued


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"force=true"),
        ("text/plain", b'{"force": true}'),
        ("multipart/form-data; boundary=x", b"--x--\r\n"),
        ("application/x-www-form-urlencoded", b""),  # an empty form still says what it is
    ],
)
def test_a_write_whose_body_is_not_json_is_refused(
    real_ledger: Ledger, failed_task: int, content_type: str, body: bytes
) -> None:
    with ThreadedServer(real_ledger) as base:
        answer = httpx.post(
            f"{base}/api/tasks/{failed_task}/retry",
            content=body,
            headers={"Content-Type": content_type},
        )
    assert answer.status_code == 415
    assert answer.json()["detail"] == (
        f"send the body as JSON (Content-Type: application/json), not {content_type}"
    )
    assert count(real_ledger) == 1


def test_a_rebound_host_name_is_refused_everywhere(real_ledger: Ledger, failed_task: int) -> None:
    with ThreadedServer(real_ledger) as base:
        page = httpx.get(f"{base}/", headers={"Host": "evil.example"})
        read = httpx.get(f"{base}/api/tasks", headers={"Host": "evil.example:8000"})
        write = httpx.post(
            f"{base}/api/tasks/{failed_task}/retry", json={}, headers={"Host": "evil.example"}
        )
        other_port = httpx.get(f"{base}/api/batches", headers={"Host": "localhost:9999"})
        ipv6 = httpx.get(f"{base}/api/batches", headers={"Host": "[::1]:8000"})
    for refused in (page, read, write):
        assert refused.status_code == 400
        assert refused.json()["detail"].startswith("unknown Host header 'evil.example")
        assert "this server answers to 127.0.0.1, ::1, localhost" in refused.json()["detail"]
    assert count(real_ledger) == 1
    # The allow-list ignores ports; loopback names are always answered.
    assert other_port.status_code == 200
    assert ipv6.status_code == 200


def test_the_dashboards_own_json_writes_and_scripts_still_work(
    real_ledger: Ledger, failed_task: int
) -> None:
    with ThreadedServer(real_ledger) as base:
        own = httpx.post(
            f"{base}/api/tasks/{failed_task}/retry",
            json={},
            headers={"Origin": base, "Sec-Fetch-Site": "same-origin"},
        )
        script = httpx.post(f"{base}/api/tasks/b1-1-r1/retry", json={"force": True})
        bare = httpx.post(f"{base}/api/resume")  # no body, no type: a bare action
        login = httpx.post(f"{base}/login", data={"token": "x"}, headers={"Origin": base})
        foreign_login = httpx.post(f"{base}/login", data={"token": "x"}, headers={"Origin": EVIL})
    assert own.status_code == 201
    assert own.json()["task"]["external_task_id"] == "b1-1-r1"
    assert script.status_code == 409  # the retry is queued, not finished: refused by the rule
    assert bare.status_code == 200
    assert login.status_code == 303
    assert foreign_login.status_code == 403
    assert count(real_ledger) == 2


def test_kling_callbacks_to_the_public_url_are_taken(real_ledger: Ledger) -> None:
    local = add_task(real_ledger, 1)
    with ThreadedServer(real_ledger, public_url="https://kw.example.com") as base:
        # What Kling sends: JSON, no Origin, Host = the public URL's host (through a tunnel).
        delivered = httpx.post(
            f"{base}/callbacks/kling/{CALLBACK_TOKEN}",
            content=raw(legacy_body(1, "processing")),
            headers={"Host": "kw.example.com", "Content-Type": "application/json"},
        )
        page = httpx.get(f"{base}/api/batches", headers={"Host": "kw.example.com"})
        proxied = httpx.post(
            f"{base}/api/resume",
            json={},
            headers={"Host": "127.0.0.1:8000", "Origin": "https://kw.example.com"},
        )
    assert delivered.status_code == 200
    assert page.status_code == 200
    assert proxied.status_code == 200  # a proxy rewrote Host; the browser was on the public URL
    task = real_ledger.task(local)
    assert task is not None
    assert task.status is LocalStatus.PROCESSING


def test_bound_to_every_interface_ip_addresses_and_this_machine_are_answered(
    real_ledger: Ledger,
) -> None:
    with ThreadedServer(real_ledger, bind_host="0.0.0.0", api_token="t") as base:
        by_ip = httpx.get(f"{base}/healthz", headers={"Host": "192.168.1.20:8000"})
        rebound = httpx.get(f"{base}/healthz", headers={"Host": "evil.example"})
    assert by_ip.status_code == 200
    assert rebound.status_code == 400
    assert "or any IP address" in rebound.json()["detail"]


@pytest.mark.parametrize(
    ("netloc", "host"),
    [
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("LocalHost.", "localhost"),
        ("kw.example.com", "kw.example.com"),
        ("", None),
        ("[bad", None),
    ],
)
def test_host_of_reads_host_headers(netloc: str, host: str | None) -> None:
    assert host_of(netloc) == host


def test_the_policy_holds_loopback_the_bind_address_the_public_host_and_extras() -> None:
    policy = HostPolicy.build(
        bind_host="192.168.1.5", public_url="https://kw.example.com:8443/x", extra=["nas.lan"]
    )
    for name in ("localhost", "127.0.0.1", "::1", "192.168.1.5", "kw.example.com", "nas.lan"):
        assert policy.allows(name), name
    assert not policy.allows("192.168.1.6")  # a specific bind does not open every address
    assert not policy.allows("evil.example")
    assert policy.origins == frozenset({"https://kw.example.com:8443"})
