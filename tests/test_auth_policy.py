"""Policy pattern matching and authorization (docs/compat/auth.md §2–§4)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykes.auth.authorizer import Authorizer
from pykes.auth.policy import Policy, match, wider_pattern
from pykes.errors import ERR_NOT_ALLOWED, APIError

ADMIN = "83a22dd8a28e1fe0961b1d5224371044b316df10334064d37e29484a627fe4b1"
USER = "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb"
OTHER = "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7"

# Every example row of the spec table (docs/compat/auth.md §4): (pattern, path, matches).
TABLE = [
    ("/v1/key/generate/my-app*", "/v1/key/generate/my-app", True),
    ("/v1/key/generate/my-app*", "/v1/key/generate/my-app-2", True),
    ("/v1/key/generate/my-app*", "/v1/key/decrypt/my-app", False),
    ("/v1/key/*", "/v1/key/create/x", True),
    ("/v1/key/*", "/v1/key/list/", True),
    ("/v1/key/*", "/v1/status", False),
    ("/v1/status", "/v1/status", True),
    ("/v1/status", "/v1/status/", False),
    ("/v1/key/list/*", "/v1/key/list/", True),
    ("/v1/key/list/*", "/v1/key/list/a", True),
    ("/v1/key/list/*", "/v1/key/list", False),
    ("/v1/*/create/x", "/v1/key/create/x", False),
    ("/v1/*/create/x", "/v1/policy/create/x", False),
]

# Further rules of §4: empty never matches, prefix crosses '/', '*' elsewhere, '?' and
# '[...]' are literal.
RULES = [
    ("", "", False),
    ("", "/v1/status", False),
    ("*", "/v1/status", True),
    ("*", "", True),
    ("/v1/key/*", "/v1/key/create/a/b/c", True),  # crosses '/', unlike path.Match
    ("/v1/key/*", "/v1/key/", True),
    ("/v1/key/*", "/v1/key", False),
    ("/v1/*/create/x", "/v1/*/create/x", True),  # literal '*' equals itself
    ("/v1/key/?", "/v1/key/a", False),
    ("/v1/key/[ab]", "/v1/key/a", False),
    ("/v1/key/[ab]*", "/v1/key/[ab]x", True),
    ("/v1/Status", "/v1/status", False),  # case-sensitive
    ("/v1/key/**", "/v1/key/*x", True),  # only the last '*' is special
    ("/v1/key/**", "/v1/key/x", False),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), TABLE + RULES)
def test_match(pattern: str, path: str, expected: bool) -> None:
    assert match(pattern, path) is expected


@pytest.mark.parametrize(("pattern", "path", "expected"), TABLE + RULES)
def test_single_pattern_policy_agrees_with_match(pattern: str, path: str, expected: bool) -> None:
    assert Policy("p", allow=(pattern,)).allows(path) is expected
    denied = Policy("p", allow=("*",), deny=(pattern,))
    assert denied.allows(path) is not expected


def test_empty_policy_denies_everything() -> None:
    policy = Policy("empty", allow=(), deny=())
    for path in ["/v1/status", "/v1/key/create/x", "/", ""]:
        assert not policy.allows(path)


def test_deny_before_allow() -> None:
    policy = Policy(
        "minio",
        allow=("/v1/key/*", "/v1/status"),
        deny=("/v1/key/delete/*", "/v1/key/create/secret"),
    )
    assert policy.allows("/v1/key/create/my-key")
    assert policy.allows("/v1/status")
    assert not policy.allows("/v1/key/delete/my-key")
    assert not policy.allows("/v1/key/create/secret")
    assert policy.allows("/v1/key/create/secret-2")
    assert not policy.allows("/v1/metrics")
    # Deny alone never grants anything.
    assert not Policy("d", deny=("/v1/key/delete/*",)).allows("/v1/status")


def test_policy_matches_reference_semantics_exhaustively() -> None:
    patterns = ["", "*", "/v1/*", "/v1/key/*", "/v1/key/list/*", "/v1/status", "/v1/*/x"]
    paths = ["", "/", "/v1", "/v1/", "/v1/status", "/v1/key/list", "/v1/key/list/", "/v1/*/x"]
    for allow_n, deny_n in itertools.product(range(3), range(2)):
        for allow in itertools.combinations(patterns, allow_n):
            for deny in itertools.combinations(patterns, deny_n):
                policy = Policy("p", allow=allow, deny=deny)
                for path in paths:
                    expected = not any(match(d, path) for d in deny) and any(
                        match(a, path) for a in allow
                    )
                    assert policy.allows(path) is expected, (allow, deny, path)


def test_policy_accepts_lists_and_is_immutable() -> None:
    policy = Policy("p", allow=["/v1/status"], deny=["/v1/metrics"])  # type: ignore[arg-type]
    assert policy.allow == ("/v1/status",)
    assert policy.deny == ("/v1/metrics",)
    assert policy == Policy("p", allow=("/v1/status",), deny=("/v1/metrics",))
    with pytest.raises(AttributeError):
        policy.name = "q"  # type: ignore[misc]


# --- Authorizer ---------------------------------------------------------------------


@pytest.fixture
def authorizer() -> Authorizer:
    policies = {
        "minio": Policy(
            "minio",
            allow=("/v1/key/create/minio-*", "/v1/key/generate/minio-*", "/v1/status"),
            deny=("/v1/key/create/minio-forbidden",),
        ),
        "nothing": Policy("nothing"),
    }
    return Authorizer(ADMIN, policies, {USER: "minio", OTHER: "nothing"})


def _assert_forbidden(authorizer: Authorizer, identity: str, path: str) -> None:
    with pytest.raises(APIError) as info:
        authorizer.authorize(identity, path)
    assert info.value == ERR_NOT_ALLOWED
    assert info.value.status == 403
    assert info.value.message == "not authorized: insufficient permissions"


def test_admin_bypasses_policies(authorizer: Authorizer) -> None:
    assert authorizer.is_admin(ADMIN)
    for path in ["/v1/log/audit", "/v1/metrics", "/v1/key/delete/x", "/anything"]:
        authorizer.authorize(ADMIN, path)  # does not raise


def test_admin_matching_is_exact(authorizer: Authorizer) -> None:
    assert not authorizer.is_admin(ADMIN.upper())
    assert not authorizer.is_admin(" " + ADMIN)
    assert not authorizer.is_admin("")
    _assert_forbidden(authorizer, ADMIN.upper(), "/v1/status")


def test_empty_identity_never_admin() -> None:
    disabled = Authorizer("", {}, {})
    assert not disabled.is_admin("")
    _assert_forbidden(disabled, "", "/v1/status")


def test_non_hex_admin_disables_admin() -> None:
    disabled = Authorizer("disabled", {}, {})
    assert disabled.admin == "disabled"
    assert not disabled.is_admin(ADMIN)
    _assert_forbidden(disabled, ADMIN, "/v1/status")


def test_unknown_identity_forbidden(authorizer: Authorizer) -> None:
    unknown = "f" * 64
    assert authorizer.policy_of(unknown) is None
    _assert_forbidden(authorizer, unknown, "/v1/status")


def test_allowed_and_denied_paths(authorizer: Authorizer) -> None:
    authorizer.authorize(USER, "/v1/status")
    authorizer.authorize(USER, "/v1/key/create/minio-1")
    authorizer.authorize(USER, "/v1/key/generate/minio-")
    _assert_forbidden(authorizer, USER, "/v1/key/create/minio-forbidden")  # denied
    _assert_forbidden(authorizer, USER, "/v1/key/create/other")  # not allowed
    _assert_forbidden(authorizer, USER, "/v1/status/")
    _assert_forbidden(authorizer, OTHER, "/v1/status")  # empty policy
    assert not authorizer.is_admin(USER)


def test_policy_lookup(authorizer: Authorizer) -> None:
    policy = authorizer.policy_of(USER)
    assert policy is not None and policy.name == "minio"
    assert authorizer.assignments[USER] == "minio"
    assert set(authorizer.policies) == {"minio", "nothing"}


def test_forbidden_errors_are_fresh_instances(authorizer: Authorizer) -> None:
    errors = []
    for _ in range(2):
        with pytest.raises(APIError) as info:
            authorizer.authorize(OTHER, "/v1/status")
        errors.append(info.value)
    assert errors[0] == errors[1] == ERR_NOT_ALLOWED
    assert errors[0] is not errors[1] and errors[0] is not ERR_NOT_ALLOWED


def test_assignment_to_unknown_policy_rejected() -> None:
    with pytest.raises(ValueError):
        Authorizer(ADMIN, {}, {USER: "missing"})


def test_authorizer_does_not_alias_inputs() -> None:
    policies = {"p": Policy("p", allow=("/v1/status",))}
    assignments = {USER: "p"}
    authorizer = Authorizer(ADMIN, policies, assignments)
    assignments.clear()
    policies.clear()
    authorizer.authorize(USER, "/v1/status")
    assert authorizer.assignments == {USER: "p"}


# ------------------------------------------------------------------ legacy API rules
# docs/legacy-api.md: legacy write routes only through patterns that name them; a
# run-time policy never allows more than its writer's (wider_pattern).
WRITE = ("/v1/policy/write/",)
_PIECES = ("/v1/", "policy/", "write/", "key/", "a", "b", "-", "")


def _patterns() -> st.SearchStrategy[str]:
    text = st.lists(st.sampled_from(_PIECES), max_size=4).map("".join)
    return st.tuples(text, st.booleans()).map(lambda t: t[0] + "*" if t[1] else t[0])


def _grants(policy: Policy, path: str) -> bool:
    """What the server lets a policy do on ``path`` under the legacy rules."""
    if path.startswith(WRITE):
        return policy.allows_explicitly(path, WRITE[0])
    return policy.allows(path)


@pytest.mark.parametrize(
    ("pattern", "names_it"),
    [
        ("/v1/policy/write/*", True),
        ("/v1/policy/write/app-*", True),
        ("/v1/policy/write/app", True),
        ("/v1/policy/*", False),
        ("/v1/*", False),
        ("*", False),
        ("/v1/policy/write*", False),
    ],
)
def test_only_a_pattern_that_names_a_write_route_reaches_it(pattern: str, names_it: bool) -> None:
    policy, path = Policy("p", [pattern]), "/v1/policy/write/app"
    if pattern.endswith("app-*"):
        path += "-1"
    assert policy.allows(path)
    assert policy.allows_explicitly(path, WRITE[0]) is names_it
    denied = Policy("d", [pattern], ["/v1/policy/write/*"])
    assert not denied.allows_explicitly(path, WRITE[0])


@pytest.mark.parametrize(
    ("written", "writer", "wider"),
    [
        (Policy("w", ["/v1/key/*"]), Policy("o", ["/v1/key/*"]), None),
        (Policy("w", ["/v1/key/a*"]), Policy("o", ["/v1/key/*"]), None),
        (Policy("w", ["/v1/*"]), Policy("o", ["/v1/key/*"]), "/v1/*"),
        (Policy("w", ["/v1/key/*"]), Policy("o", ["/v1/key/*"], ["/v1/key/b*"]), "/v1/key/*"),
        (
            Policy("w", ["/v1/key/*"], ["/v1/key/b"]),
            Policy("o", ["/v1/key/*"], ["/v1/key/b*"]),
            "/v1/key/*",
        ),
        (Policy("w", ["/v1/key/*"], ["/v1/key/*"]), Policy("o", []), None),
        (Policy("w", ["/v1/key/*"], ["/v1/k*"]), Policy("o", ["/v1/key/*"], ["/v1/key/b"]), None),
        (Policy("w", ["/v1/policy/write/*"]), Policy("o", ["/v1/*"]), "/v1/policy/write/*"),
        (Policy("w", ["/v1/policy/write/x"]), Policy("o", ["/v1/policy/write/*"]), None),
        (Policy("w", ["", "/v1/status"]), Policy("o", ["/v1/status"]), None),
    ],
)
def test_wider_pattern_examples(written: Policy, writer: Policy, wider: str | None) -> None:
    assert wider_pattern(written, writer, WRITE) == wider


@given(
    st.lists(_patterns(), max_size=4),
    st.lists(_patterns(), max_size=3),
    st.lists(_patterns(), max_size=4),
    st.lists(_patterns(), max_size=3),
)
def test_a_policy_within_its_writer_never_grants_more(
    allow: list[str], deny: list[str], limit_allow: list[str], limit_deny: list[str]
) -> None:
    """Soundness of ``wider_pattern`` on every path the patterns can tell apart: their
    literal parts, and each extended by every piece."""
    written, writer = Policy("w", allow, deny), Policy("o", limit_allow, limit_deny)
    if wider_pattern(written, writer, WRITE) is not None:
        return
    literals = {p.rstrip("*") for p in (*allow, *deny, *limit_allow, *limit_deny)}
    paths = literals | {lit + piece for lit in literals for piece in _PIECES}
    for path in paths:
        assert not _grants(written, path) or _grants(writer, path), path
