"""ed25519 signing keys: generation, loading, key ids.

Private keys are PEM (PKCS#8) files written with mode 0600; public keys are PEM
SubjectPublicKeyInfo. A key id is the sha256 of the public key's DER encoding, which
anyone can recompute::

    openssl pkey -pubin -in llmguard.pub -outform DER | sha256sum

Nothing here ever prints, logs or returns private key bytes; error messages name the
file, never its content. ``LLMGUARD_SIGNING_KEY`` holds a *path* to a key file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import LlmguardError
from ..report import atomic_write

KEY_ENV = "LLMGUARD_SIGNING_KEY"
PASSWORD_ENV = "LLMGUARD_SIGNING_KEY_PASSWORD"
PRIVATE_NAME = "llmguard.key"
PUBLIC_NAME = "llmguard.pub"


class KeyFileError(LlmguardError):
    """A key file that is missing, unreadable or of the wrong kind (exit 2)."""


def keyid_of(public_key: Ed25519PublicKey) -> str:
    """sha256 (hex) of the DER SubjectPublicKeyInfo of ``public_key``."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class SigningKey:
    """A private key ready to sign, with its key id.

    ``development`` marks a throw-away key made for one run: its signature shows that
    the files were not changed since, never who made them.
    """

    private: Ed25519PrivateKey
    keyid: str
    source: str
    development: bool = False

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def __repr__(self) -> str:  # never show key material
        kind = "development" if self.development else "signing"
        return f"SigningKey({kind}, keyid={self.keyid[:16]}…, source={self.source})"


def generate(out_dir: Path, force: bool = False) -> tuple[Path, Path, str]:
    """Write a new key pair into ``out_dir``; returns (private path, public path, keyid)."""
    out_dir = Path(out_dir)
    private_path, public_path = out_dir / PRIVATE_NAME, out_dir / PUBLIC_NAME
    if not force:
        for p in (private_path, public_path):
            if p.exists():
                raise KeyFileError(f"{p}: already exists; refusing to overwrite a key (use --force)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(private_path, pem, mode=0o600)
    atomic_write(public_path, public_pem(key.public_key()), mode=0o644)
    return private_path, public_path, keyid_of(key.public_key())


def development_key() -> SigningKey:
    """A throw-away key held in memory for one run (never written)."""
    key = Ed25519PrivateKey.generate()
    return SigningKey(
        private=key,
        keyid=keyid_of(key.public_key()),
        source="development key (throw-away)",
        development=True,
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read {what}: {exc.strerror}") from None


def load_private(path: Path, source: str | None = None) -> SigningKey:
    """Load an ed25519 private key (PEM; encrypted ones with ``LLMGUARD_SIGNING_KEY_PASSWORD``)."""
    path = Path(path)
    data = _read(path, "private key")
    password = os.environ.get(PASSWORD_ENV)
    try:
        key = serialization.load_pem_private_key(data, password=password.encode() if password else None)
    except TypeError:
        raise KeyFileError(f"{path}: the private key is encrypted; set {PASSWORD_ENV}") from None
    except ValueError:
        raise KeyFileError(f"{path}: not a PEM private key (or a wrong {PASSWORD_ENV})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(
            f"{path}: not an ed25519 key ({type(key).__name__.lstrip('_')}); generate one with 'llmguard keygen'"
        )
    return SigningKey(private=key, keyid=keyid_of(key.public_key()), source=source or str(path))


def private_key_warnings(path: Path) -> list[str]:
    """Warn when a private key file is readable by group or others."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return []
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [f"{path}: private key is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it"]
    return []


def key_from_environment() -> SigningKey | None:
    """The key named by ``LLMGUARD_SIGNING_KEY`` (a path), or None when unset.

    The variable's value is never echoed: a user who pastes the key itself into it
    must not see it copied into a CI log.
    """
    value = os.environ.get(KEY_ENV, "").strip()
    if not value:
        return None
    if "\n" in value or value.startswith("-----") or len(value) > 4096:
        raise KeyFileError(f"{KEY_ENV} must hold the path of a key file, not the key itself")
    path = Path(value).expanduser()
    if not path.is_file():
        raise KeyFileError(f"{KEY_ENV} names no readable key file (it must hold the path of a PEM private key)")
    return load_private(path, source=f"${KEY_ENV}")


def load_public(path: Path) -> tuple[Ed25519PublicKey, str]:
    """Load an ed25519 public key (PEM); returns (key, keyid)."""
    path = Path(path)
    data = _read(path, "public key")
    if b"PRIVATE KEY" in data:
        raise KeyFileError(f"{path}: this is a private key; pass the public key (.pub) to verify")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise KeyFileError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an ed25519 public key")
    return key, keyid_of(key)


def cmd_keygen(args: Any) -> int:
    """``llmguard keygen --out DIR [--force]``: write a key pair, print paths and keyid only."""
    private, public, keyid = generate(Path(args.out), force=bool(getattr(args, "force", False)))
    print(f"private key: {private} (mode 600; keep it secret, e.g. in your CI's secret store)")
    print(f"public key:  {public} (give it to whoever verifies)")
    print(f"keyid:       {keyid}")
    return 0
