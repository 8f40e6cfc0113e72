"""Two-factor maths (SPEC B4), pure: TOTP (RFC 6238) through pyotp, the secret sealed at rest
with a key derived from ELECTRO_SECRET_KEY, and recovery codes. No database, no web.

Sealing: AES-256-GCM (``cryptography``) under a key derived from the secret key with HKDF-SHA256,
a fresh 96-bit nonce per seal, the account id as associated data (a sealed secret copied onto
another account does not open). A stolen database or backup holds only sealed secrets.
Rotation: secrets sealed under an earlier secret key still open while that key is given as
``previous`` (ELECTRO_PREVIOUS_SECRET_KEY); they are sealed again under the current key when
next used (see services.two_factor and the README).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ISSUER = "E-lectro"
SEAL_VERSION = "v1"
STEP_SECONDS = 30  # pyotp's default interval, which authenticator apps assume
DRIFT_STEPS = 1  # a code of the step before or after the current one is accepted too
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l look-alikes


class SealBroken(ValueError):
    """A sealed secret opens under none of the given keys (a lost or rotated-away key)."""


def new_secret() -> str:
    """160 random bits in base32, as authenticator apps expect."""
    return pyotp.random_base32(32)


def _sealing_key(secret_key: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"electro two-factor secret v1").derive(secret_key.encode())
    return AESGCM(derived)


def seal(secret_key: str, secret: str, account_id: int) -> str:
    nonce = os.urandom(12)
    sealed = _sealing_key(secret_key).encrypt(nonce, secret.encode(), str(account_id).encode())
    return f"{SEAL_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(secret_keys: Sequence[str], sealed: str, account_id: int) -> tuple[str, bool]:
    """The clear secret, and whether it was sealed under a key other than the first (current)
    one, so it should be sealed again. Empty keys are skipped."""
    version, _, body = sealed.partition(".")
    if version != SEAL_VERSION:
        raise SealBroken(f"unknown sealing version {version!r}")
    raw = base64.urlsafe_b64decode(body)
    for position, key in enumerate(k for k in secret_keys if k):
        try:
            clear = _sealing_key(key).decrypt(raw[:12], raw[12:], str(account_id).encode())
        except InvalidTag:
            continue
        return clear.decode(), position > 0
    raise SealBroken("the two-factor secret opens under none of the configured keys")


def provisioning_uri(secret: str, account_name: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=ISSUER)


def time_step(moment: datetime) -> int:
    """The RFC 6238 time step (30 s) of a naive-UTC ``moment``."""
    return int(moment.replace(tzinfo=UTC).timestamp()) // STEP_SECONDS


def is_totp_shaped(code: str) -> bool:
    return len(code) == 6 and code.isascii() and code.isdigit()


def matching_step(secret: str, code: str, moment: datetime) -> int | None:
    """The time step within the allowed drift whose code is ``code``, or None."""
    if not is_totp_shaped(code):
        return None
    totp = pyotp.TOTP(secret)
    current = time_step(moment)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten codes of 16 characters (80 random bits each), shown as four groups of four."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def normalise_code(code: str) -> str:
    """What was typed, without spaces and dashes, lower case (codes are read off a screen)."""
    return "".join(code.split()).replace("-", "").lower()[:64]


def hash_recovery_code(code: str) -> str:
    """SHA-256 of the normalised code: 80 random bits need no slow hash."""
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()
