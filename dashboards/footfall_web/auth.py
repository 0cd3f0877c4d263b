"""Pure authentication logic: password hashes (hashlib.scrypt), signed session cookies,
bearer tokens, and the bind policy (a login is needed beyond loopback)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from footfall_contract.config import ConfigError

# shared with footfall-alerts' API; re-exported for this package
from footfall_contract.httpauth import bearer_token as bearer_token
from footfall_contract.httpauth import check_token as check_token
from footfall_contract.httpauth import is_loopback as is_loopback

SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1
_DKLEN = 32
_MAX_SCRYPT_N = 2**17


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None, n: int = _N) -> str:
    """`scrypt$N$r$p$salt$hash` (URL-safe base64), what `footfall-web hash-password`
    prints and `auth.users` holds."""
    if not password:
        raise ValueError("the password is empty")
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_R, p=_P, dklen=_DKLEN)
    return f"{SCHEME}${n}${_R}${_P}${_b64(salt)}${_b64(key)}"


@dataclass(frozen=True)
class PasswordHash:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes


def parse_password_hash(encoded: str) -> PasswordHash:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise ValueError("not a password hash of the form scrypt$N$r$p$salt$hash")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise ValueError("not a password hash: bad number or base64") from None
    if n < 2 or n & (n - 1) or n > _MAX_SCRYPT_N or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("password hash with unusable scrypt parameters")
    if len(salt) < 8 or len(key) < 16:
        raise ValueError("password hash with a too short salt or key")
    return PasswordHash(n, r, p, salt, key)


def verify_password(password: str, encoded: str) -> bool:
    h = parse_password_hash(encoded)
    key = hashlib.scrypt(
        password.encode(),
        salt=h.salt,
        n=h.n,
        r=h.r,
        p=h.p,
        dklen=len(h.key),
        maxmem=128 * h.r * (h.n + h.p + 2) + 2**20,
    )
    return hmac.compare_digest(key, h.key)


_DUMMY = hash_password("not a password", salt=b"constant-salt-16")


def check_login(users: dict[str, str], user: str, password: str) -> bool:
    """Same work for unknown users as for known ones (no user-name oracle by timing)."""
    encoded = users.get(user)
    ok = verify_password(password, encoded or _DUMMY)
    return ok and encoded is not None


# -- session cookies ------------------------------------------------------------------


def make_session(secret: bytes, user: str, now_s: float, lifetime_s: float) -> str:
    """`user.expiry.signature`: tamper-evident, no server-side store."""
    body = f"{_b64(user.encode())}.{int(now_s + lifetime_s)}"
    sig = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(sig)}"


def read_session(secret: bytes, cookie: str | None, now_s: float) -> str | None:
    """The user of a valid, unexpired session cookie, else None."""
    if not cookie or cookie.count(".") != 2:
        return None
    user_b64, expiry, sig = cookie.split(".")
    body = f"{user_b64}.{expiry}"
    want = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(want, _unb64(sig)) or int(expiry) < now_s:
            return None
        return _unb64(user_b64).decode()
    except (ValueError, UnicodeDecodeError):
        return None


# -- CSRF -----------------------------------------------------------------------------


def csrf_token(secret: bytes, session: str | None) -> str:
    """The token the board sends with its POSTs (`X-CSRF-Token`), bound to the login
    cookie (or to "no login" on loopback). Another site can neither read it (same-origin
    policy) nor send the header without a CORS preflight, which is never granted."""
    mac = hmac.new(secret, b"csrf\0" + (session or "").encode(), hashlib.sha256).digest()
    return _b64(mac)


def check_csrf(secret: bytes, session: str | None, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(secret, session).encode(), presented.encode())


# -- bind policy ----------------------------------------------------------------------


def login_required(host: str, require_login: bool | None) -> bool:
    if require_login is None:
        return not is_loopback(host)
    return require_login


def check_bind_policy(host: str, require_login: bool | None, users: int, tokens: int) -> bool:
    """Whether a login is needed; ConfigError when the settings would expose the board
    and the API to the network without one."""
    if not is_loopback(host) and require_login is False:
        raise ConfigError(
            f"http.host {host!r} is beyond loopback: auth.require_login = false is refused "
            "(the board and the API would be open to the network)"
        )
    needed = login_required(host, require_login)
    if needed and users == 0 and tokens == 0:
        where = "beyond loopback" if not is_loopback(host) else "with auth.require_login"
        raise ConfigError(
            f"http.host {host!r}: listening {where} needs a login, but no users or tokens "
            'are configured. Add a user (FOOTFALL_AUTH__USERS=\'{"name": "<hash>"}\' with '
            "a hash from `footfall-web hash-password`) or a bearer token "
            "(FOOTFALL_AUTH__TOKENS), or listen on 127.0.0.1."
        )
    return needed
