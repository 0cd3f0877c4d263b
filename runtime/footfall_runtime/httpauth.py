"""Pure bearer-token checks shared by the HTTP services (footfall-web's API and
footfall-alerts' API): reading `Authorization: Bearer ...`, comparing tokens in constant
time, and telling loopback listen addresses from the rest."""

from __future__ import annotations

import hmac
import ipaddress

MIN_TOKEN_LENGTH = 16


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def check_token(tokens: list[str], presented: str) -> bool:
    """Whether `presented` is one of `tokens`; every token is compared (constant time)."""
    found = False
    for token in tokens:
        found |= hmac.compare_digest(token.encode(), presented.encode())
    return found


def is_loopback(host: str) -> bool:
    """Whether a listen address only takes local connections. Host names other than
    "localhost" count as beyond loopback (they may resolve anywhere)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def short_tokens(tokens: list[str]) -> list[int]:
    """Indexes of the tokens shorter than MIN_TOKEN_LENGTH (refused in the settings)."""
    return [i for i, token in enumerate(tokens) if len(token) < MIN_TOKEN_LENGTH]
