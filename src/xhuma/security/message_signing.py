"""Message signing as Electrum's payments channel does it: a message carries, in the
`x-jwt-signature` header, an ES256 JWT whose claim `electrum.co.za/content-digest` is the
SHA-256 of the exact body bytes sent (standard base64), with `iat`, `exp` and a unique `jti`.
So the signature covers the body as it went on the wire, not a re-encoding of it.

xhuma signs what it sends to a provider or the bank when given a signing key (a P-256 private
key, PEM), and verifies the bank's status reports when given the bank's public key (a PEM
public key or certificate). PyJWT does the JOSE work. Pure functions: any thread."""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HEADER = "x-jwt-signature"
DIGEST_CLAIM = "electrum.co.za/content-digest"
ALGORITHM = "ES256"
LIFETIME_SECONDS = 300
"""How long a signature is valid after it is made (a message is signed just before it is sent)."""
LEEWAY_SECONDS = 60
"""Clock difference tolerated between the signer and us."""
PEM_BLOCK = re.compile(rb"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.DOTALL)


class KeyFileError(ValueError):
    """A signing or verification key file that cannot be used; the message names the file."""


class SignatureError(ValueError):
    """Why a message's signature is refused: missing, not a valid ES256 JWT from the expected
    key, expired, or a digest that is not the body's."""


def body_digest(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path} cannot be read: {exc.strerror or exc}") from None


def load_signing_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from a PEM file (unencrypted), or KeyFileError saying why not."""
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyFileError(f"{path} is not a P-256 (prime256v1) key, which ES256 needs")
    return key


def load_verify_keys(path: Path) -> list[ec.EllipticCurvePublicKey]:
    """The P-256 public keys in a PEM file, each as a key or a certificate (several, while a
    signer rotates its key: any of them verifies), or KeyFileError."""
    blocks = PEM_BLOCK.findall(_read(path))
    if not blocks:
        raise KeyFileError(f"{path} is not a PEM public key or certificate (no PEM block in it)")
    keys = []
    for block in blocks:
        key: Any
        try:
            if b"CERTIFICATE" in block.split(b"\n", 1)[0]:
                key = x509.load_pem_x509_certificate(block).public_key()
            else:
                key = serialization.load_pem_public_key(block)
        except ValueError as exc:
            raise KeyFileError(f"{path} is not a PEM public key or certificate ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise KeyFileError(f"{path} holds a key that is not a P-256 (prime256v1) public key, which ES256 needs")
        keys.append(key)
    return keys


class MessageSigner:
    """Signs each outgoing body with one private key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, issuer: str | None = None) -> None:
        self._key = key
        self._issuer = issuer

    def sign(self, body: bytes) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            DIGEST_CLAIM: body_digest(body),
            "iat": now,
            "exp": now + LIFETIME_SECONDS,
            "jti": str(uuid.uuid4()),
        }
        if self._issuer:
            claims["iss"] = self._issuer
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)


def verify(token: str | None, body: bytes, keys: list[ec.EllipticCurvePublicKey]) -> dict[str, Any]:
    """The claims of a message's signature over `body` by one of `keys`, or SignatureError
    saying what is wrong."""
    if not token:
        raise SignatureError(f"no {HEADER} header")
    problem = "no key given"
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[ALGORITHM], leeway=LEEWAY_SECONDS, options={"require": ["iat", "exp"]}
            )
        except jwt.ExpiredSignatureError:
            raise SignatureError(f"{HEADER} has expired") from None
        except jwt.InvalidSignatureError:
            problem = "the signature is not the expected key's"
            continue
        except jwt.PyJWTError as exc:
            raise SignatureError(f"{HEADER} does not verify: {exc}") from None
        if claims.get(DIGEST_CLAIM) != body_digest(body):
            raise SignatureError(f"{HEADER}: the {DIGEST_CLAIM} claim is not the SHA-256 of the body")
        return claims
    raise SignatureError(f"{HEADER} does not verify: {problem}")
