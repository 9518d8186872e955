"""Who may in the KMS API (issue 24, slice 2) on a real stateful ``kes server`` over real
mTLS: the policy (301-306) and identity (401-404) commands through raw frames, and
every command authorized by privilege (SysAdmin = the server's admin, Admin, User) and
a User's KMS policy — never widened by the KES API's policies, nor they by it, and
nothing of one enclave reachable from another.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from conftest import PKI, ClientIdentity
from pykes.kms.commands import Command
from pykes.kms.identity import from_kes
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs
from pykes.kms.pb import rule_pb2
from test_kms_api import ACCESS_DENIED, KMS, error_of
from test_stateful import new_store

A, B = "acc-a", "acc-b"


def rules(*patterns: str) -> rule_pb2.RuleSet:
    return rule_pb2.RuleSet(Rules={p: rule_pb2.Rule() for p in patterns})


@dataclass
class Parties:
    kms: KMS
    user: httpx.Client  # User in A, policy "gen-minio"
    user_identity: ClientIdentity
    admin_a: httpx.Client  # Admin in A
    kes_user: httpx.Client  # a KES API identity of A (KES policy: generate anything)


@pytest.fixture(scope="module")
def parties(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[Parties]:
    servers = new_store(tmp_path_factory.mktemp("kms-access") / "store", pki)
    server = servers.start()
    user, admin_a, kes_user = (pki.client(n) for n in ("kms-user", "kms-admin-a", "kes-user"))
    with (
        server.client(servers.admin) as admin,
        server.client(pki.client("kms-nobody")) as nobody,
        server.client(servers.admin, http2=True) as admin_http2,
        server.client(user) as user_client,
        server.client(admin_a) as admin_a_client,
        server.client(kes_user) as kes_user_client,
    ):
        kms = KMS(server, admin, nobody, servers.admin.identity, admin_http2)
        kms.ok(None, Command.ENCLAVE_CREATE, [rq.CreateEnclaveRequest(Name=n) for n in (A, B)],
               None)  # fmt: skip
        for enclave in (A, B):
            keys = [rq.CreateKeyRequest(Name=n) for n in ("minio-x", "other-y")]
            kms.ok(enclave, Command.KEY_CREATE, keys, None)
        allow = {"KEY:GENERATE": rules("minio-*")}
        kms.ok(A, Command.POLICY_CREATE, [rq.CreatePolicyRequest(Name="gen-minio", Allow=allow)],
               None)  # fmt: skip
        identities = [
            rq.CreateIdentityRequest(Identity=from_kes(user.identity), Privilege="User"),
            rq.CreateIdentityRequest(Identity=from_kes(admin_a.identity), Privilege="Admin"),
        ]
        kms.ok(A, Command.IDENTITY_CREATE, identities, None)
        assign = rq.AssignPolicyRequest(Identity=from_kes(user.identity), Policy="gen-minio")
        kms.ok(A, Command.POLICY_ASSIGN, [assign], None)
        # The KES API's own run-time policy in A, for another identity
        kes = {"Kes-Enclave": A}
        r = admin.post("/v1/policy/write/kes-gen", json={"allow": ["/v1/key/generate/*"]},
                       headers=kes)  # fmt: skip
        assert r.status_code == 200, r.text
        r = admin.post(f"/v1/identity/assign/kes-gen/{kes_user.identity}", headers=kes)
        assert r.status_code == 200, r.text
        yield Parties(kms, user_client, user, admin_a_client, kes_user_client)
    server.stop()


def generate(name: str) -> list[rq.GenerateKeyRequest]:
    return [rq.GenerateKeyRequest(Name=name)]


# ------------------------------------------------------------------ a User's policy
def test_a_user_may_what_its_policy_allows_and_nothing_else(parties: Parties) -> None:
    kms, user = parties.kms, parties.user
    (answer,) = kms.ok(A, Command.KEY_GENERATE, generate("minio-x"), rs.GenerateKeyResponse,
                       client=user)  # fmt: skip
    assert answer.Version == 1 and len(answer.Plaintext) == 32

    assert kms.error(A, Command.KEY_GENERATE, generate("other-y"), client=user) == ACCESS_DENIED
    # one frame it may not run fails the batch
    batch = generate("minio-x") + generate("other-y")
    assert kms.error(A, Command.KEY_GENERATE, batch, client=user) == ACCESS_DENIED
    # other commands on the same key
    encrypt = [rq.EncryptRequest(Name="minio-x", Plaintext=b"x")]
    assert kms.error(A, Command.KEY_ENCRYPT, encrypt, client=user) == ACCESS_DENIED
    status = [rq.KeyStatusRequest(Name="minio-x")]
    assert kms.error(A, Command.KEY_STATUS, status, client=user) == ACCESS_DENIED
    assert kms.error(A, Command.KEY_LIST, [rq.ListRequest()], client=user) == ACCESS_DENIED
    # another enclave, and the enclave-less path (cluster and enclave commands)
    assert kms.error(B, Command.KEY_GENERATE, generate("minio-x"), client=user) == ACCESS_DENIED
    listing = [rq.ListRequest()]
    assert kms.error(None, Command.ENCLAVE_LIST, listing, client=user) == ACCESS_DENIED
    assert kms.error(None, Command.KEY_GENERATE, generate("minio-x"), client=user) == ACCESS_DENIED


def test_a_user_never_changes_who_may_whatever_its_policy(parties: Parties) -> None:
    """A User cannot widen its own rights: policy and identity writes are an Admin's."""
    kms = parties.kms
    me = from_kes(parties.user_identity.identity)
    allow = {"KEY:GENERATE": rules("*"), "POLICY:GET": rules("*"), "IDENTITY:STATUS": rules("*")}
    kms.ok(A, Command.POLICY_CREATE, [rq.CreatePolicyRequest(Name="wide", Allow=allow)], None)
    user = parties.user
    writes = [
        (Command.POLICY_CREATE, rq.CreatePolicyRequest(Name="mine", Allow=allow)),
        (Command.POLICY_ASSIGN, rq.AssignPolicyRequest(Identity=me, Policy="wide")),
        (Command.POLICY_DELETE, rq.DeletePolicyRequest(Name="gen-minio")),
        (Command.IDENTITY_CREATE, rq.CreateIdentityRequest(Identity=me, Privilege="Admin")),
        (Command.IDENTITY_DELETE, rq.DeleteIdentityRequest(Identity=me)),
    ]
    for command, message in writes:
        assert kms.error(A, command, [message], client=user) == ACCESS_DENIED, command
    assert kms.error(A, Command.KEY_GENERATE, generate("other-y"), client=user) == ACCESS_DENIED


def test_deny_wins_and_a_deleted_policy_grants_nothing(parties: Parties, pki: PKI) -> None:
    kms = parties.kms
    someone = pki.client("kms-deny-user")
    policy = rq.CreatePolicyRequest(
        Name="deny-some",
        Allow={"KEY:GENERATE": rules("*"), "KEY:STATUS": rules("minio-x")},
        Deny={"KEY:GENERATE": rules("other-*")},
    )
    kms.ok(A, Command.POLICY_CREATE, [policy], None)
    h1 = from_kes(someone.identity)
    kms.ok(A, Command.IDENTITY_CREATE, [rq.CreateIdentityRequest(Identity=h1)], None)  # User
    kms.ok(A, Command.POLICY_ASSIGN, [rq.AssignPolicyRequest(Identity=h1, Policy="deny-some")],
           None)  # fmt: skip
    with kms.server.client(someone) as c:
        kms.ok(A, Command.KEY_GENERATE, generate("minio-x"), rs.GenerateKeyResponse, client=c)
        kms.ok(A, Command.KEY_STATUS, [rq.KeyStatusRequest(Name="minio-x")],
               rs.KeyStatusResponse, client=c)  # fmt: skip
        assert kms.error(A, Command.KEY_GENERATE, generate("other-y"), client=c) == ACCESS_DENIED

        kms.ok(A, Command.POLICY_DELETE, [rq.DeletePolicyRequest(Name="deny-some")], None)
        (identity,) = kms.ok(A, Command.IDENTITY_GET, [rq.IdentityRequest(Identity=h1)],
                             rs.IdentityResponse)  # fmt: skip
        assert (identity.Privilege, identity.Policy) == (3, "")
        kms.ok(A, Command.POLICY_CREATE, [policy], None)  # the same name again
        assert kms.error(A, Command.KEY_GENERATE, generate("minio-x"), client=c) == ACCESS_DENIED


# ------------------------------------------------------------------ Admin and SysAdmin
def test_an_admin_may_all_in_its_enclave_only(parties: Parties) -> None:
    kms, admin_a = parties.kms, parties.admin_a
    kms.ok(A, Command.KEY_CREATE, [rq.CreateKeyRequest(Name="by-admin-a")], None, client=admin_a)
    kms.ok(A, Command.KEY_GENERATE, generate("other-y"), rs.GenerateKeyResponse, client=admin_a)
    kms.ok(A, Command.POLICY_LIST, [rq.ListRequest()], rs.ListPoliciesResponse, client=admin_a)
    create = [rq.CreateEnclaveRequest(Name="by-admin-a")]
    assert kms.error(None, Command.ENCLAVE_CREATE, create, client=admin_a) == ACCESS_DENIED
    assert kms.error(B, Command.KEY_GENERATE, generate("minio-x"), client=admin_a) == ACCESS_DENIED
    assert kms.error(B, Command.POLICY_LIST, [rq.ListRequest()], client=admin_a) == ACCESS_DENIED


def test_the_server_admin_is_sysadmin_and_no_one_else_becomes_one(parties: Parties) -> None:
    kms = parties.kms
    admin = from_kes(kms.admin_identity)
    (answer,) = kms.ok(B, Command.IDENTITY_GET, [rq.IdentityRequest(Identity=admin)],
                       rs.IdentityResponse)  # fmt: skip
    assert (answer.Identity, answer.Privilege) == (admin, 1)
    other = from_kes(parties.user_identity.identity)
    sysadmin = [rq.CreateIdentityRequest(Identity=other, Privilege="SysAdmin")]
    assert kms.error(A, Command.IDENTITY_CREATE, sysadmin) == (
        400,
        "privilege 'SysAdmin' is the server admin's (admin.identity) alone",
    )
    bad = [rq.CreateIdentityRequest(Identity=other, Privilege="Root")]
    assert kms.error(A, Command.IDENTITY_CREATE, bad) == (400, "privilege 'Root' is invalid")
    not_h1 = [rq.CreateIdentityRequest(Identity=parties.user_identity.identity)]
    assert kms.error(A, Command.IDENTITY_CREATE, not_h1)[0] == 400


# ------------------------------------------------------------------ the two APIs apart
def test_neither_api_widens_the_other(parties: Parties) -> None:
    """A KMS policy grants nothing in the KES API and a KES policy nothing in the KMS
    API: one certificate is one identity in both, with two separate grants."""
    kms = parties.kms
    kes = {"Kes-Enclave": A}
    r = parties.user.put("/v1/key/generate/minio-x", json={}, headers=kes)
    assert (r.status_code, r.json()) == (
        403,
        {"message": "not authorized: insufficient permissions"},
    )
    r = parties.kes_user.put("/v1/key/generate/minio-x", json={}, headers=kes)
    assert r.status_code == 200, r.text
    assert kms.error(A, Command.KEY_GENERATE, generate("minio-x"), client=parties.kes_user) == (
        ACCESS_DENIED
    )
    # and each API lists only its own
    (page,) = kms.ok(A, Command.POLICY_LIST, [rq.ListRequest()], rs.ListPoliciesResponse)
    assert "kes-gen" not in [p.Name for p in page.Policies]
    assert "gen-minio" in [p.Name for p in page.Policies]
    names = kms.admin.get("/v1/policy/list/*", headers=kes).text
    assert "kes-gen" in names and "gen-minio" not in names


def test_a_tenant_never_sees_another_tenants_policies_or_identities(parties: Parties) -> None:
    kms = parties.kms
    (policies,) = kms.ok(B, Command.POLICY_LIST, [rq.ListRequest()], rs.ListPoliciesResponse)
    (identities,) = kms.ok(B, Command.IDENTITY_LIST, [rq.ListRequest()],
                           rs.ListIdentitiesResponse)  # fmt: skip
    assert list(policies.Policies) == [] and list(identities.Identities) == []
    get = [rq.PolicyRequest(Name="gen-minio")]
    assert kms.error(B, Command.POLICY_GET, get) == (404, "policy does not exist")
    who = [rq.IdentityRequest(Identity=from_kes(parties.user_identity.identity))]
    assert kms.error(B, Command.IDENTITY_GET, who) == (404, "identity does not exist")


# ------------------------------------------------------------------ the commands
def test_policy_and_identity_commands_and_their_errors(parties: Parties, pki: PKI) -> None:
    kms = parties.kms
    allow = {"KEY:GENERATE": rules("minio-*", "x"), "KEY:DECRYPT": rules("minio-*")}
    deny = {"KEY:GENERATE": rules("minio-secret")}
    create = rq.CreatePolicyRequest(Name="cmd-p", Allow=allow, Deny=deny)
    kms.ok(A, Command.POLICY_CREATE, [create], None)
    (got,) = kms.ok(A, Command.POLICY_GET, [rq.PolicyRequest(Name="cmd-p")], rs.PolicyResponse)
    assert {c: set(s.Rules) for c, s in got.Allow.items()} == {
        "KEY:GENERATE": {"minio-*", "x"},
        "KEY:DECRYPT": {"minio-*"},
    }
    assert {c: set(s.Rules) for c, s in got.Deny.items()} == {"KEY:GENERATE": {"minio-secret"}}
    assert got.CreatedBy == from_kes(kms.admin_identity) and got.CreatedAt.seconds > 0
    (status,) = kms.ok(A, Command.POLICY_STATUS, [rq.PolicyRequest(Name="cmd-p")],
                       rs.PolicyStatusResponse)  # fmt: skip
    assert status.Name == "cmd-p" and status.CreatedAt == got.CreatedAt
    (page,) = kms.ok(A, Command.POLICY_LIST, [rq.ListRequest(Prefix="cmd-")],
                     rs.ListPoliciesResponse)  # fmt: skip
    assert [p.Name for p in page.Policies] == ["cmd-p"]

    missing = [rq.PolicyRequest(Name="cmd-none")]
    assert kms.error(A, Command.POLICY_STATUS, missing) == (404, "policy does not exist")
    delete = [rq.DeletePolicyRequest(Name="cmd-none")]
    assert kms.error(A, Command.POLICY_DELETE, delete) == (404, "policy does not exist")
    for bad_allow, text in [
        ({"KEY:FLY": rules("*")}, "policy command 'KEY:FLY' is invalid or cannot be granted"),
        ({"ENCLAVE:CREATE": rules("*")},
         "policy command 'ENCLAVE:CREATE' is invalid or cannot be granted"),
        ({"KEY:GENERATE": rules("a*b")}, "policy pattern 'a*b' is invalid"),
        ({"KEY:GENERATE": rules("a/b")}, "policy pattern 'a/b' is invalid"),
    ]:  # fmt: skip
        bad = [rq.CreatePolicyRequest(Name="cmd-bad", Allow=bad_allow)]
        assert kms.error(A, Command.POLICY_CREATE, bad) == (400, text)

    someone = from_kes(pki.client("kms-cmd-user").identity)
    assign = [rq.AssignPolicyRequest(Identity=someone, Policy="cmd-p")]
    assert kms.error(A, Command.POLICY_ASSIGN, assign) == (404, "identity does not exist")
    kms.ok(
        A,
        Command.IDENTITY_CREATE,
        [rq.CreateIdentityRequest(Identity=someone, Privilege="User")],
        None,
    )
    no_policy = [rq.AssignPolicyRequest(Identity=someone, Policy="cmd-none")]
    assert kms.error(A, Command.POLICY_ASSIGN, no_policy) == (404, "policy does not exist")
    kms.ok(A, Command.POLICY_ASSIGN, assign, None)
    (identity,) = kms.ok(A, Command.IDENTITY_GET, [rq.IdentityRequest(Identity=someone)],
                         rs.IdentityResponse)  # fmt: skip
    assert (identity.Identity, identity.Privilege, identity.Policy) == (someone, 3, "cmd-p")
    assert identity.CreatedBy == from_kes(kms.admin_identity)
    (listed,) = kms.ok(A, Command.IDENTITY_LIST, [rq.ListRequest(Prefix=someone[:10])],
                       rs.ListIdentitiesResponse)  # fmt: skip
    assert someone in [i.Identity for i in listed.Identities]
    kms.ok(A, Command.IDENTITY_DELETE, [rq.DeleteIdentityRequest(Identity=someone)], None)
    gone = [rq.IdentityRequest(Identity=someone)]
    assert kms.error(A, Command.IDENTITY_GET, gone) == (404, "identity does not exist")


def test_an_enclave_with_kms_records_is_not_empty(parties: Parties) -> None:
    kms = parties.kms
    kms.ok(None, Command.ENCLAVE_CREATE, [rq.CreateEnclaveRequest(Name="acc-c")], None)
    kms.ok("acc-c", Command.POLICY_CREATE, [rq.CreatePolicyRequest(Name="p")], None)
    r = kms.send(None, Command.ENCLAVE_DELETE, [rq.DeleteEnclaveRequest(Name="acc-c")])
    assert error_of(r)[0] == 400
    kms.ok("acc-c", Command.POLICY_DELETE, [rq.DeletePolicyRequest(Name="p")], None)
    kms.ok(None, Command.ENCLAVE_DELETE, [rq.DeleteEnclaveRequest(Name="acc-c")], None)
