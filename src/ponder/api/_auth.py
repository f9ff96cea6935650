"""API keys: stored and compared as SHA-256 hashes; each run is owned by the key that created it.

``PONDER_API__API_KEYS`` takes plain keys or, better, their hashes written ``sha256:<hex>`` (make one with
``ponder serve --hash-key``), so the server's configuration never holds a usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket

from pydantic import SecretStr

from ponder.errors import ConfigError, Unauthenticated

LOCAL_OWNER = "local"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The configured keys, as hashes. With no keys the API is open and every caller is the ``local`` owner."""

    def __init__(self, keys: list[SecretStr] | list[str]) -> None:
        self._hashes: list[str] = []
        for key in keys:
            raw = key.get_secret_value() if isinstance(key, SecretStr) else key
            raw = raw.strip()
            if not raw:
                continue
            if raw.startswith("sha256:"):
                digest = raw.removeprefix("sha256:").lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise ConfigError("an API key hash must be sha256: followed by 64 hex digits")
                self._hashes.append(digest)
            else:
                self._hashes.append(hash_key(raw))

    @property
    def open(self) -> bool:
        return not self._hashes

    def owner(self, presented: str | None) -> str:
        """The owner id for a presented key (a prefix of its hash), or :class:`Unauthenticated`."""
        if self.open:
            return LOCAL_OWNER
        if not presented:
            raise Unauthenticated("this server needs an API key")
        digest = hash_key(presented)
        found = False
        for known in self._hashes:  # compare against every key, in constant time each
            found |= hmac.compare_digest(digest, known)
        if not found:
            raise Unauthenticated("unknown API key")
        return digest[:24]


def bearer_token(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(str(info[4][0])).is_loopback for info in infos)


def check_binding(host: str, keys: KeyRing) -> None:
    """Refuse to serve an open API (no keys) on anything but a loopback address."""
    if keys.open and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without API keys: anyone who can reach it could run models and tools",
            hint="set PONDER_API__API_KEYS (e.g. sha256:<hash> from `ponder serve --hash-key KEY`), "
            "or bind to 127.0.0.1",
        )
