"""Wix webhook verification: pinned RS256, checked expiry, three layers, one error type."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from syncd.errors import WebhookRejected
from syncd.wix.webhooks import load_public_key, verify

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
PUBLIC = load_public_key(PUBLIC_PEM)


def envelope(event_id: str = "evt-1", **inner_extra: object) -> dict[str, object]:
    account = {"id": "acc-1", "revision": "4", "points": {"balance": 40}}
    inner = {
        "id": event_id,
        "entityFqdn": "wix.loyalty.v1.account",
        "slug": "points_updated",
        "entityId": "acc-1",
        "eventTime": "2026-11-22T11:59:59.000Z",
        "actionEvent": {"body": {"account": account}},
        **inner_extra,
    }
    outer = {
        "eventType": "wix.loyalty.v1.account_points_updated",
        "instanceId": "inst-1",
        "data": json.dumps(inner),
        "identity": json.dumps({"identityType": "APP"}),
    }
    return {
        "data": json.dumps(outer),
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 60,
    }


def sign(claims: dict[str, object], key: rsa.RSAPrivateKey = KEY) -> bytes:
    return jwt.encode(claims, key, algorithm="RS256").encode()


def test_valid_event_parses_all_layers() -> None:
    """A genuine points-updated event yields its id, type, account and the account hint."""
    event = verify(sign(envelope()), PUBLIC, now=NOW)
    assert event.event_id == "evt-1"
    assert event.event_type == "wix.loyalty.v1.account_points_updated"
    assert event.account_id == "acc-1"
    assert event.entity["points"]["balance"] == 40
    assert event.instance_id == "inst-1"


def test_as_json_string_variants_are_accepted() -> None:
    """Entities given as `*AsJson` strings (an older documented form) parse the same."""
    claims = envelope(actionEvent={"bodyAsJson": json.dumps({"account": {"id": "acc-9"}})})
    event = verify(sign(claims), PUBLIC, now=NOW)
    assert event.entity == {"id": "acc-9"}


def test_one_line_base64_key_is_accepted() -> None:
    """The key may be given as one base64 line instead of PEM."""
    der = KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = load_public_key(base64.b64encode(der).decode())
    assert verify(sign(envelope()), key, now=NOW).event_id == "evt-1"


def forged_bodies() -> dict[str, bytes]:
    claims = envelope()
    good = sign(claims).decode()
    head, payload, signature = good.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["data"] = tampered["data"].replace("acc-1", "acc-2")
    tampered_payload = base64.urlsafe_b64encode(json.dumps(tampered).encode()).rstrip(b"=")
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return {
        "wrong key": sign(claims, OTHER_KEY),
        "alg none": f"{none_head}.{payload}.".encode(),
        "hs256 with public key": _hs256_with_public_key(claims),
        "expired": sign({**claims, "exp": int(NOW.timestamp()) - 1}),
        "no exp": sign({k: v for k, v in claims.items() if k != "exp"}),
        "tampered payload": f"{head}.{tampered_payload.decode()}.{signature}".encode(),
        "truncated": good[: len(good) // 2].encode(),
        "not a jwt": b"hello",
        "binary": b"\xff\xfe\x00",
        "data not a string or object": sign({**claims, "data": 5}),
        "inner data not json": sign(
            {**claims, "data": json.dumps({"eventType": "x", "data": "{"})}
        ),
        "no event id": sign({**claims, "data": json.dumps({"eventType": "x", "data": "{}"})}),
        "huge": b"a" * (300 * 1024),
    }


def _hs256_with_public_key(claims: dict[str, object]) -> bytes:
    import hashlib
    import hmac

    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    mac = hmac.new(PUBLIC_PEM.encode(), head + b"." + body, hashlib.sha256).digest()
    return head + b"." + body + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")


@pytest.mark.parametrize("name", sorted(forged_bodies()))
def test_forgeries_are_rejected(name: str) -> None:
    """Each forged or malformed body raises WebhookRejected, never anything else."""
    with pytest.raises(WebhookRejected):
        verify(forged_bodies()[name], PUBLIC, now=NOW)


def test_expiry_is_checked_against_the_given_now() -> None:
    """A token valid at NOW is refused a minute and a second later."""
    body = sign(envelope())
    verify(body, PUBLIC, now=NOW)
    with pytest.raises(WebhookRejected, match="expired"):
        verify(body, PUBLIC, now=NOW + timedelta(seconds=61))


def test_bad_public_key_text() -> None:
    """A key that is neither PEM nor base64 DER is a ValueError for the config check to report."""
    with pytest.raises(ValueError):
        load_public_key("not a key")
