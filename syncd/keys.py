"""Public keys from configuration text (used by settings validation and webhook checks)."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key


def load_public_key(text: str) -> RSAPublicKey:
    """An RSA public key from PEM, or from the one-line base64 form Wix's dashboard shows."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode(text, validate=False))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ValueError("not an RSA public key in PEM or base64 DER form") from exc
    if not isinstance(key, RSAPublicKey):
        raise ValueError("the webhook public key must be an RSA key")
    return key
