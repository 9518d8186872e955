"""Audit and error log streams of the SDK against a live server (sync and async)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from conftest import PKI
from pykes.client import AsyncClient, AuditEvent, ErrorEvent, NotAllowed
from test_cli_support import KesServer, start_kes


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[KesServer]:
    server = start_kes(tmp_path_factory.mktemp("streams"), pki)
    yield server
    server.stop()


def test_audit_stream(kes: KesServer) -> None:
    events: list[AuditEvent] = []
    with kes.client() as c, c.audit_log() as stream:

        def trigger() -> None:
            with kes.client() as other:
                other.create_key("audited")
                other.import_key("audited-import", bytes(32))
                other.delete_key("audited")

        threading.Thread(target=trigger, daemon=True).start()
        for event in stream:
            events.append(event)
            if len(events) == 3:
                break
    paths = [e.path for e in events]
    assert paths == [
        "/v1/key/create/audited",
        "/v1/key/import/audited-import",
        "/v1/key/delete/audited",
    ]
    for event in events:
        assert event.status == 200
        assert event.identity == kes.admin.identity
        assert event.ip == "127.0.0.1"
        assert event.response_time > 0
        assert event.to_json()["request"]["path"] == event.path


def test_error_stream_and_denied_subscription(kes: KesServer) -> None:
    """With ``log.error: debug`` a denied request is an error-log event."""
    with kes.client() as c, c.error_log() as stream:

        def trigger() -> None:
            with kes.client(kes.user) as user, pytest.raises(NotAllowed):
                user.create_key("not-for-readers")

        threading.Thread(target=trigger, daemon=True).start()
        event = next(iter(stream))
    assert isinstance(event, ErrorEvent)
    assert "access denied" in event.message and "level=DEBUG" in event.message
    assert kes.user.identity in event.message

    with kes.client(kes.user) as user, pytest.raises(NotAllowed):
        user.audit_log()


def test_async_audit_stream(kes: KesServer) -> None:
    async def scenario() -> list[AuditEvent]:
        ca = str(kes.server.pki.server_cert)
        async with AsyncClient(kes.server.url, api_key=kes.admin, ca_file=ca) as c:
            stream = await c.audit_log()
            async with stream:
                await c.create_key("async-audited")
                return [await stream.__anext__()]

    (event,) = asyncio.run(scenario())
    assert event.path == "/v1/key/create/async-audited" and event.status == 200
