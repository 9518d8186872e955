"""schemathesis against a live pykes server, generated from docs/openapi.yaml.

A real server process (fs keystore, one worker) is called over real mutual TLS, once as
the admin and once as an identity with a narrow policy (most calls → 403). Every
operation is fuzzed with positive (schema-valid) and negative (schema-violating)
inputs; the key operations are fuzzed again against an existing key so that request
bodies reach the crypto parsers. Pass criteria: no 5xx, every response conforms to the
document (status code, content type, body schema), the server is still alive and
answering at the end, and its stderr holds no Python traceback.

Deterministic and bounded for CI (``derandomize``, ``PYKES_SCHEMATHESIS_EXAMPLES``
examples per operation and mode, default 25). For a long local run:
``PYKES_SCHEMATHESIS_EXAMPLES=500 pytest tests/test_openapi_schemathesis.py``.

The log streams (/v1/log/error, /v1/log/audit) never end, so they are not fuzzed (they
take no parameters or body); they are checked once each with a streamed request that
reads only the status line and headers.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from requests.adapters import HTTPAdapter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import PKI, ClientIdentity, RunningServer, config_yaml, start_server

DOC = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"
EXAMPLES = int(os.environ.get("PYKES_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
STREAMS = ("/v1/log/error", "/v1/log/audit")
FUZZ_KEY = "fuzz-key"  # exists during the run; the narrow identity may use fuzz-*
NARROW_POLICY = (
    "policy:\n"
    "  narrow:\n"
    "    allow:\n"
    "      - /v1/key/describe/fuzz-*\n"
    "      - /v1/key/generate/fuzz-*\n"
    "      - /v1/key/decrypt/fuzz-*\n"
    "      - /v1/key/list/*\n"
    "      - /v1/status\n"
    "    deny:\n"
    "      - /v1/key/decrypt/fuzz-key\n"
    "    identities:\n"
    "      - {identity}\n"
)

SCHEMA = schemathesis.openapi.from_path(str(DOC))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("schemathesis")
    admin = pki.client("admin")
    narrow = pki.client("narrow")
    text = config_yaml(
        pki, admin.identity, root / "keys", NARROW_POLICY.format(identity=narrow.identity)
    )
    server = start_server(root, pki, text)
    try:
        yield server
    finally:
        server.stop()


class _MTLSAdapter(HTTPAdapter):
    """requests over an ``ssl.SSLContext`` holding the client certificate and trusting
    the test server's self-signed certificate."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def _session(server: RunningServer, ident: ClientIdentity) -> requests.Session:
    session = requests.Session()
    session.mount("https://", _MTLSAdapter(server.ssl_context(ident)))
    return session


def _fuzz(
    server: RunningServer,
    session: requests.Session,
    modes: tuple[GenerationMode, ...],
    *,
    examples: int,
    fixed_name: str | None = None,
    only: Callable[[Any], bool] = lambda op: True,
) -> tuple[list[str], int]:
    """Fuzz every selected operation; return the failure reports and the call count."""
    failures: list[str] = []
    calls = 0
    for result in SCHEMA.get_all_operations():
        operation = result.ok()
        if operation.path in STREAMS or not only(operation):
            continue
        if operation.definition.raw.get("x-kes-stateful"):  # not served here (stateless)
            continue
        params = {}
        if fixed_name is not None and "{name}" in operation.path:
            params = {"name": fixed_name}
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=params)

            @settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                nonlocal calls
                calls += 1
                response = case.call(base_url=server.url, session=session, timeout=20)
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:  # negative mode: nothing to violate (no params, no body)
                pass
            except Exception as err:  # collect every operation's failure, then assert
                failures.append(f"{operation.label} [{mode.value}]: {err}")
    return failures, calls


def _assert_healthy(server: RunningServer, session: requests.Session) -> None:
    assert server.proc.poll() is None, "server process died"
    answer = session.get(server.url + "/version", timeout=10)
    assert answer.status_code == 200 and "version" in answer.json()
    _, stderr = server.output()
    assert "Traceback" not in stderr, stderr[-4000:]


def test_admin_fuzz(live: RunningServer, pki: PKI) -> None:
    session = _session(live, pki.client("admin"))
    created = session.put(f"{live.url}/v1/key/create/{FUZZ_KEY}", timeout=10)
    assert created.status_code in (200, 400), created.text
    both = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    failures, calls = _fuzz(live, session, both, examples=EXAMPLES)
    # Bodies against an existing key: exercises generate/encrypt/decrypt/hmac parsing.
    # Delete is left out so the key stays for the rest of the run.
    more, more_calls = _fuzz(
        live,
        session,
        both,
        examples=EXAMPLES,
        fixed_name=FUZZ_KEY,
        only=lambda op: op.path.startswith("/v1/key/") and "delete" not in op.path,
    )
    failures += more
    assert calls + more_calls > 0
    assert failures == [], "\n\n".join(failures)
    _assert_healthy(live, session)


def test_narrow_identity_fuzz(live: RunningServer, pki: PKI) -> None:
    session = _session(live, pki.client("narrow"))
    admin = _session(live, pki.client("admin"))
    admin.put(f"{live.url}/v1/key/create/{FUZZ_KEY}", timeout=10)
    failures, calls = _fuzz(live, session, (GenerationMode.POSITIVE,), examples=EXAMPLES)
    more, _ = _fuzz(
        live,
        session,
        (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
        examples=EXAMPLES,
        fixed_name=FUZZ_KEY,
        only=lambda op: op.path.startswith("/v1/key/"),
    )
    assert calls > 0
    failures += more
    assert failures == [], "\n\n".join(failures)
    # The policy is in force: an allowed path answers, a denied and an unlisted do not.
    assert session.get(f"{live.url}/v1/key/describe/{FUZZ_KEY}", timeout=10).status_code == 200
    denied = session.put(f"{live.url}/v1/key/decrypt/{FUZZ_KEY}", json={}, timeout=10)
    assert denied.status_code == 403
    assert denied.json() == {"message": "not authorized: insufficient permissions"}
    assert session.put(f"{live.url}/v1/key/create/fuzz-x", timeout=10).status_code == 403
    _assert_healthy(live, admin)


@pytest.mark.parametrize("path", STREAMS)
def test_log_streams_answer_with_the_documented_type(
    live: RunningServer, pki: PKI, path: str
) -> None:
    operation = SCHEMA[path]["GET"]
    documented = set(operation.definition.raw["responses"]["200"]["content"])
    with _session(live, pki.client("admin")).get(live.url + path, stream=True, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"] in documented
    with _session(live, pki.client("narrow")).get(live.url + path, stream=True, timeout=10) as r:
        assert r.status_code == 403
        assert r.json() == {"message": "not authorized: insufficient permissions"}


def test_live_route_list_is_documented(live: RunningServer, pki: PKI) -> None:
    """/v1/api of the running server names only documented operations (or legacy ones)."""
    from test_openapi_doc import LEGACY_PREFIXES

    documented = set()
    for result in SCHEMA.get_all_operations():
        op = result.ok()
        prefix = op.path.split("{", 1)[0]
        documented.add((prefix, op.method.upper()))
    answer = _session(live, pki.client("admin")).get(live.url + "/v1/api", timeout=10)
    assert answer.status_code == 200
    served = {(r["path"], r["method"]) for r in answer.json()}
    undocumented = {(p, m) for p, m in served - documented if not p.startswith(LEGACY_PREFIXES)}
    assert undocumented == set()
    assert len(served & documented) == 22
