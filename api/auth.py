"""API keys: 256-bit random tokens shown once; only their SHA-256 is stored. When at least
one active key exists every endpoint but ``/healthz`` needs one; ``read`` keys cannot
submit, cancel, upload or delete."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api.db.models import ApiKey, utcnow
from api.errors import Conflict, Forbidden, Missing, Unauthorized

SCOPES = ("read", "write")
KEY_PREFIX = "cs_"


@dataclass(frozen=True)
class Principal:
    owner: str  # the key's name, or "local" without keys
    scope: str


LOCAL = Principal("local", "write")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(S: sessionmaker[Session], name: str, scope: str) -> str:
    """Create a key; returns the token (shown once, never stored)."""
    if scope not in SCOPES:
        raise Conflict(f"scope {scope!r}: use read or write")
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    with S() as s:
        if s.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
            raise Conflict(f"a key named {name!r} exists; pick another name or revoke it")
        s.add(ApiKey(name=name, prefix=token[:10], key_hash=hash_key(token), scope=scope))
        s.commit()
    return token


def list_keys(S: sessionmaker[Session]) -> list[ApiKey]:
    with S() as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(S: sessionmaker[Session], name: str) -> None:
    with S() as s:
        res = s.execute(update(ApiKey).where(ApiKey.name == name).values(revoked=True))
        s.commit()
    if res.rowcount == 0:
        raise Missing(f"no key named {name!r}")


class KeyChecker:
    """Resolves a request's key to a `Principal` (``keys_configured`` cached ~2 s)."""

    def __init__(self, S: sessionmaker[Session], cache_s: float = 2.0) -> None:
        self.S, self.cache_s = S, cache_s
        self._configured: tuple[float, bool] = (0.0, False)

    def keys_configured(self) -> bool:
        t, v = self._configured
        if time.monotonic() - t > self.cache_s:
            with self.S() as s:
                v = s.scalar(select(ApiKey.id).where(ApiKey.revoked.is_(False)).limit(1))
                v = v is not None
            self._configured = (time.monotonic(), v)
        return v

    def principal(self, token: str | None, need: str) -> Principal:
        if not self.keys_configured():
            return LOCAL
        if not token:
            raise Unauthorized(
                "this server requires an API key: send 'Authorization: Bearer KEY' "
                "(create one with `codesign keys create`)"
            )
        with self.S() as s:
            key = s.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(token))).first()
            if key is None or key.revoked:
                raise Unauthorized("unknown or revoked API key")
            if need == "write" and key.scope != "write":
                raise Forbidden(f"key {key.name!r} has scope {key.scope}; this needs write")
            now = utcnow()
            if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
                key.last_used_at = now  # at most one write a minute per key
                s.commit()
            return Principal(key.name, key.scope)
