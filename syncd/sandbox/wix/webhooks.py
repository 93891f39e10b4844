"""Wix webhook wire format: an RS256 JWT around two JSON-string layers, as `webhooks.process` reads.

    JWT (RS256) claims      {"data": "<outer JSON>", "iat", "exp"}
    outer                   {"eventType", "instanceId", "data": "<inner JSON>",
                             "identity": "<identity JSON>", "accountInfo": {"siteId"}}
    inner (domain event)    {"id", "entityFqdn", "slug", "entityId", "eventTime",
                             "triggeredByAnonymizeRequest", "entityEventSequence",
                             "createdEvent": {"entity"} | "updatedEvent": {"currentEntity"}
                             | "actionEvent": {"body"}}

With the knob `webhook_entity_encoding = "json"` the entity travels as a JSON string under
`entityAsJson` / `currentEntityAsJson` / `bodyAsJson` instead. The key pair is generated on
first use unless a private key PEM is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from syncd.sandbox.wix.knobs import WixKnobs
from syncd.sandbox.wix.model import Change
from syncd.sandbox.wix.wire import IdFactory, iso

SITE_OWNER_ID = "00000000-0000-4000-8000-00000000a11c"  # the Wix user behind site-side changes
_AS_JSON = {"entity": "entityAsJson", "currentEntity": "currentEntityAsJson", "body": "bodyAsJson"}


class SigningKeys:
    """The emulator's RSA key pair (2048 bits), generated lazily unless a PEM is given."""

    def __init__(self, private_key_pem: str | None = None) -> None:
        self._private: rsa.RSAPrivateKey | None = None
        if private_key_pem:
            key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("the webhook signing key must be an RSA private key")
            self._private = key

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The private key, generated on first use."""
        if self._private is None:
            self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._private

    @property
    def public_key_pem(self) -> str:
        """The public key as `-----BEGIN PUBLIC KEY-----` PEM, as the app dashboard shows it."""
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


@dataclass
class WebhookEvent:
    """One emitted event: its id, type and signed body (the same bytes on every delivery)."""

    id: str
    event_type: str
    entity_id: str
    claims: dict[str, Any]  # fixed when the change happens: a resend carries the original data
    outer: dict[str, Any]  # the decoded middle layer, for tests and the admin log
    inner: dict[str, Any]
    keys: SigningKeys = field(repr=False)
    _body: str | None = field(default=None, repr=False)

    @property
    def event_id(self) -> str:
        """The event's id (`id`), under the name the shared dispatcher logs it by."""
        return self.id

    @property
    def body(self) -> str:
        """The JWT, signed on first use (so emulators that never deliver never make a key)."""
        if self._body is None:
            self._body = jwt.encode(self.claims, self.keys.private_key, algorithm="RS256")
        return self._body

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description for logs."""
        return {"id": self.id, "eventType": self.event_type, "entityId": self.entity_id}


class EventSigner:
    """Turns model changes into signed webhook events."""

    def __init__(
        self,
        keys: SigningKeys,
        knobs: WixKnobs,
        new_id: IdFactory,
        *,
        instance_id: str,
        site_id: str,
        app_id: str,
    ) -> None:
        self.keys = keys
        self.knobs = knobs
        self.new_id = new_id
        self.instance_id = instance_id
        self.site_id = site_id
        self.app_id = app_id
        self._sequence: dict[str, int] = {}

    def sign(self, change: Change) -> WebhookEvent:
        """Build the three layers for `change` and sign them, dated at the change."""
        sequence = self._sequence.get(change.entity_id, 0) + 1
        self._sequence[change.entity_id] = sequence
        event_id = self.new_id()
        body = change.body
        if self.knobs.webhook_entity_encoding == "json":
            body = {_AS_JSON.get(k, k): json.dumps(v) for k, v in body.items()}
        inner = {
            "id": event_id,
            "entityFqdn": change.entity_fqdn,
            "slug": change.slug,
            "entityId": change.entity_id,
            "eventTime": iso(change.at),
            "triggeredByAnonymizeRequest": False,
            "entityEventSequence": str(sequence),
            change.body_kind: body,
        }
        identity = (
            {"identityType": "APP", "appId": self.app_id}
            if change.origin == "app"
            else {"identityType": "WIX_USER", "wixUserId": SITE_OWNER_ID}
        )
        outer = {
            "eventType": change.event_type,
            "instanceId": self.instance_id,
            "data": json.dumps(inner),
            "identity": json.dumps(identity),
            "accountInfo": {"siteId": self.site_id},
        }
        issued = change.at
        claims = {
            "data": json.dumps(outer),
            "iat": int(issued.timestamp()),
            "exp": int(
                (issued + timedelta(seconds=self.knobs.webhook_jwt_ttl_seconds)).timestamp()
            ),
        }
        return WebhookEvent(
            event_id, change.event_type, change.entity_id, claims, outer, inner, self.keys
        )
