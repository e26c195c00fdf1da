"""Customer tokens: what is accepted, and every way one is refused, each with its own code."""

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import func, select

from app import auth_settings, clock, customer_auth
from app.errors import ChatError
from app.extensions import db
from app.models import AuthSetting, Customer, Workstream
from tests.support import HOST_ORIGIN, KID, npm_package, rsa_key_pair


@pytest.fixture
def setting(world, ctx):
    return db.session.get(AuthSetting, world.auth_setting_id)


@pytest.fixture
def workstream(world, ctx):
    return db.session.get(Workstream, world.workstream_id)


def claims(**extra) -> dict:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 600, **extra}


def rs256(world, payload: dict, kid: str | None = KID, key: str | None = None) -> str:
    headers = {"kid": kid} if kid else {}
    return jwt.encode(payload, key or world.private_key, algorithm="RS256", headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refused(workstream, token) -> str:
    with pytest.raises(ChatError) as error:
        customer_auth.verify(workstream, token)
    assert error.value.status == 401
    return error.value.code


def test_an_rs256_token_names_the_customer(world, workstream):
    identity = customer_auth.verify(workstream, rs256(world, claims(name="Alice A")))
    assert (identity.sub, identity.display_name, identity.context, identity.authenticated) == (
        "alice",
        "Alice A",
        {},
        True,
    )


def test_an_hs256_token_with_the_shared_secret_is_accepted(world, workstream):
    assert customer_auth.verify(workstream, world.token("alice", alg="HS256")).sub == "alice"


def test_an_es256_key_verifies_its_tokens(world, workstream, setting):
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    auth_settings.add_key(setting, "ec-1", public)
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    token = jwt.encode(claims(), pem, algorithm="ES256", headers={"kid": "ec-1"})
    assert customer_auth.verify(workstream, token).sub == "alice"
    # The key pins the algorithm: an RS256 header naming the EC key is refused.
    assert refused(workstream, rs256(world, claims(), kid="ec-1")) == "token_alg_not_allowed"


def test_alg_none_is_refused(workstream):
    token = (
        f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': KID}).encode())}.{b64(json.dumps(claims()).encode())}."
    )
    assert refused(workstream, token) == "token_alg_not_allowed"


def test_hs256_signed_with_the_public_key_as_secret_is_refused(world, workstream, setting):
    public_pem = setting.keys[0].public_key_pem
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    body = b64(json.dumps(claims()).encode())
    signature = b64(hmac.new(public_pem.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest())
    token = f"{header}.{body}.{signature}"
    assert refused(workstream, token) == "token_bad_signature"
    setting.hs256_secret = None
    assert refused(workstream, token) == "token_alg_not_allowed"


def test_an_unknown_kid_is_refused(world, workstream):
    assert refused(workstream, rs256(world, claims(), kid="nope")) == "token_unknown_kid"


def test_an_expired_key_is_refused(world, workstream, setting):
    setting.keys[0].expires_at = clock.now() - timedelta(minutes=1)
    assert refused(workstream, rs256(world, claims())) == "token_key_expired"


def test_a_retired_key_verifies_nothing_and_rotation_keeps_working(world, workstream, setting):
    new_private, new_public = rsa_key_pair()
    auth_settings.add_key(setting, "site-key-2", new_public)
    auth_settings.retire_key(setting, KID)
    assert refused(workstream, rs256(world, claims())) == "token_unknown_kid"
    assert customer_auth.verify(workstream, rs256(world, claims(), kid="site-key-2", key=new_private)).sub == "alice"


def test_exp_in_the_past_is_refused(world, workstream):
    now = int(time.time())
    assert refused(workstream, rs256(world, claims(iat=now - 600, exp=now - 120))) == "token_expired"


def test_nbf_in_the_future_is_refused(world, workstream):
    assert refused(workstream, rs256(world, claims(nbf=int(time.time()) + 300))) == "token_not_yet_valid"


def test_a_wrong_issuer_is_refused_when_one_is_set(world, workstream, setting):
    setting.issuer = "https://shop.example"
    assert refused(workstream, rs256(world, claims(iss="https://evil.example"))) == "token_wrong_issuer"
    assert customer_auth.verify(workstream, rs256(world, claims(iss="https://shop.example"))).sub == "alice"


@pytest.mark.parametrize("sub", [None, "", "   ", 42])
def test_a_missing_or_empty_sub_is_refused(world, workstream, sub):
    payload = claims()
    if sub is None:
        del payload["sub"]
    else:
        payload["sub"] = sub
    assert refused(workstream, rs256(world, payload)) == "token_missing_sub"


def test_a_sub_over_256_characters_is_refused(world, workstream):
    assert refused(workstream, rs256(world, claims(sub="x" * 257))) == "token_sub_too_long"
    assert customer_auth.verify(workstream, rs256(world, claims(sub="x" * 256))).sub == "x" * 256


def test_a_token_over_8_kb_is_refused(world, workstream):
    assert refused(workstream, rs256(world, claims(padding="x" * 8192))) == "token_too_large"


def test_a_lifetime_over_the_maximum_is_refused(world, workstream):
    now = int(time.time())
    assert refused(workstream, rs256(world, claims(iat=now, exp=now + 24 * 3600 + 1))) == "token_lifetime_too_long"


@pytest.mark.parametrize("missing", ["exp", "iat"])
def test_exp_and_iat_are_required(world, workstream, missing):
    payload = claims()
    del payload[missing]
    assert refused(workstream, rs256(world, payload)) == "token_missing_claim"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9.e30.x"])
def test_garbage_is_refused(workstream, token):
    assert refused(workstream, token) == "token_malformed"


def test_a_tampered_token_is_refused(world, workstream):
    header, body, signature = rs256(world, claims()).split(".")
    forged = b64(json.dumps(claims(sub="mallory")).encode())
    assert refused(workstream, f"{header}.{forged}.{signature}") == "token_bad_signature"


def test_context_variables_are_read_from_lwicontexts(world, workstream):
    context = {"plan": "Gold", "orders": 3, "vip": True, "ratio": 0.5, "note": None}
    identity = customer_auth.verify(workstream, rs256(world, claims(lwicontexts=json.dumps(context))))
    assert identity.context == context


@pytest.mark.parametrize(
    "lwicontexts",
    [
        {"plan": "Gold"},  # an object, not a JSON-encoded string
        "{not json",
        json.dumps(["a", "b"]),
        json.dumps({"address": {"city": "Oulu"}}),
        json.dumps({"tags": ["a"]}),
        json.dumps({f"v{i}": i for i in range(51)}),
        "[" * 4000,  # deep enough to exhaust the JSON decoder's recursion
    ],
)
def test_anything_else_in_lwicontexts_is_refused(world, workstream, lwicontexts):
    assert refused(workstream, rs256(world, claims(lwicontexts=lwicontexts))) == "token_invalid_contexts"


def test_a_refused_token_creates_nothing(client, world, app):
    now = int(time.time())
    for token in [
        rs256(world, claims(sub="new-customer", exp=now - 120, iat=now - 600)),
        rs256(world, claims(sub="new-customer"), kid="nope"),
        rs256(world, claims(sub="new-customer", lwicontexts="[1]")),
    ]:
        response = client.post(
            f"/api/widget/workstreams/{world.workstream_id}/messages",
            json={"client_id": "c1", "body": "hi"},
            headers={"Authorization": f"Bearer {token}", "Origin": HOST_ORIGIN},
        )
        assert response.status_code == 401 and response.json["error"]["code"].startswith("token_")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 0


NODE_SIGNER = """
const jwt = require("jsonwebtoken");
const now = Math.floor(Date.now() / 1000);
process.stdout.write(jwt.sign(
  {sub: "node-customer", iat: now, exp: now + 600, lwicontexts: JSON.stringify({plan: "Gold"})},
  process.env.PRIVATE_KEY, {algorithm: "RS256", keyid: process.env.KID}));
"""


@pytest.fixture(scope="session")
def node_jsonwebtoken():
    """Node's jsonwebtoken, installed from npm once into .venv (not committed)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Node.js signing check is skipped")
    return npm_package("jsonwebtoken@9", "jsonwebtoken")


def test_a_token_signed_by_nodes_jsonwebtoken_is_accepted(world, workstream, node_jsonwebtoken):
    signed = subprocess.run(
        ["node", "-e", NODE_SIGNER],
        env={
            **os.environ,
            "PRIVATE_KEY": world.private_key,
            "KID": KID,
            "NODE_PATH": str(node_jsonwebtoken / "node_modules"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    identity = customer_auth.verify(workstream, signed.stdout)
    assert (identity.sub, identity.context) == ("node-customer", {"plan": "Gold"})


@pytest.mark.parametrize(
    "claim",
    [{"sub": "alice\x00"}, {"sub": "\ud800"}, {"name": "Al\x00ice"}],
)
def test_a_signed_sub_or_name_that_cannot_be_stored_is_refused(world, workstream, claim):
    assert refused(workstream, rs256(world, claims(**claim))) == "token_malformed"


def test_a_token_header_nested_too_deep_is_malformed(world, workstream):
    header = base64.urlsafe_b64encode(b"[" * 3000).rstrip(b"=").decode()
    assert refused(workstream, f"{header}.e30.c2ln") == "token_malformed"


def verifications(monkeypatch) -> list[str]:
    """The tokens whose signature and claims are checked from here on (not answered from the cache)."""
    checked: list[str] = []
    decode = customer_auth._decode

    def counted(token, *args):
        checked.append(token)
        return decode(token, *args)

    monkeypatch.setattr(customer_auth, "_decode", counted)
    return checked


def test_a_token_verified_once_is_not_verified_again_until_it_expires(world, workstream, setting, monkeypatch):
    checked = verifications(monkeypatch)
    setting.clock_skew_seconds = 0
    token = rs256(world, claims(sub="returning", exp=int(time.time()) + 2))
    first = customer_auth.verify(workstream, token)
    assert customer_auth.verify(workstream, token) == first and checked == [token]
    # A widget holding it past its exp is refused as before: the token is checked again, and fails.
    deadline = first.expires_at + 5
    while time.time() < first.expires_at and time.time() < deadline:
        time.sleep(0.05)
    assert refused(workstream, token) == "token_expired" and checked == [token, token]


def test_a_token_verified_before_a_change_of_its_setting_or_key_is_checked_again(world, workstream, setting):
    token = rs256(world, claims(sub="before-the-change"))
    assert customer_auth.verify(workstream, token).sub == "before-the-change"
    setting.issuer = "https://shop.example"
    assert refused(workstream, token) == "token_missing_claim", "the token names no issuer"
    setting.issuer = None
    assert customer_auth.verify(workstream, token).sub == "before-the-change"
    auth_settings.retire_key(setting, KID)
    assert refused(workstream, token) == "token_unknown_kid"


def test_a_token_verified_before_its_key_expired_is_refused_after(world, workstream, setting):
    setting.keys[0].expires_at = clock.now() + timedelta(hours=1)
    token = rs256(world, claims(sub="key-expiring"))
    assert customer_auth.verify(workstream, token).sub == "key-expiring"
    later = clock.now() + timedelta(hours=2)
    clock.set_source(lambda: later)
    assert refused(workstream, token) == "token_key_expired"


def test_the_verified_tokens_kept_are_bounded_by_their_size_as_well_as_their_number(world, workstream, monkeypatch):
    checked = verifications(monkeypatch)
    big = [rs256(world, claims(sub=f"big-{n}", context={"cart": "x" * 4000})) for n in range(4)]
    small = [rs256(world, claims(sub=f"small-{n}")) for n in range(4)]
    # Room for two of the big tokens, or for three tokens of any size.
    monkeypatch.setattr(
        customer_auth, "_verified", customer_auth._Verified(entries=3, token_bytes=2 * len(big[0]) + 100)
    )

    def verified_again(tokens: list[str]) -> list[bool]:
        checked.clear()
        for token in tokens:
            customer_auth.verify(workstream, token)
        return [token in checked for token in tokens]

    verified_again(big)
    assert verified_again(big[2:]) == [False, False], "the last two fit"
    assert verified_again(big[1:2]) == [True], "the one before them was let go for their size"
    verified_again(small)
    assert len(customer_auth._verified) == 3
    assert verified_again(small[1:]) == [False, False, False]
    assert verified_again(small[:1]) == [True], "the first was let go for their number"
