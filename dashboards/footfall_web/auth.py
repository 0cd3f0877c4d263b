"""Authentication logic: password hashes (hashlib.scrypt), server-side login sessions
with signed cookies, the back-off after failed logins, bearer tokens, and the bind
policy (a login is needed beyond loopback)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from footfall_runtime.config import ConfigError

# shared with footfall-alerts' API; re-exported for this package
from footfall_runtime.httpauth import bearer_token as bearer_token
from footfall_runtime.httpauth import check_token as check_token
from footfall_runtime.httpauth import is_loopback as is_loopback

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


# -- sessions -------------------------------------------------------------------------


@dataclass
class _Session:
    user: str
    expires_s: float


class SessionStore:
    """Login sessions kept by the server, so that logging out ends a session wherever its
    cookie is used (a copied cookie dies with it). The cookie is `id.signature`: a random
    id signed with the session secret, so a guessed or forged one is refused without a
    lookup. Memory is bounded: only configured users get sessions, each at most
    `max_per_user` (a new login ends that user's oldest one). Sessions live in memory: a
    restart of footfall-web logs everyone out."""

    def __init__(self, secret: bytes, *, max_per_user: int = 32) -> None:
        self._secret = secret
        self._max_per_user = max_per_user
        self._sessions: dict[str, _Session] = {}
        self._by_user: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def _sign(self, sid: str) -> str:
        return _b64(hmac.new(self._secret, b"session\0" + sid.encode(), hashlib.sha256).digest())

    def _sid(self, cookie: str | None) -> str | None:
        if not cookie or cookie.count(".") != 1 or len(cookie) > 200:
            return None
        sid, sig = cookie.split(".")
        return sid if hmac.compare_digest(self._sign(sid).encode(), sig.encode()) else None

    def create(self, user: str, now_s: float, lifetime_s: float) -> str:
        """A new session; its cookie value."""
        sid = secrets.token_urlsafe(24)
        with self._lock:
            mine = [s for s in self._by_user.get(user, []) if self._live(s, now_s)]
            while len(mine) >= self._max_per_user:
                self._sessions.pop(mine.pop(0), None)
            self._sessions[sid] = _Session(user, now_s + lifetime_s)
            self._by_user[user] = [*mine, sid]
        return f"{sid}.{self._sign(sid)}"

    def _live(self, sid: str, now_s: float) -> bool:
        """Whether `sid` is a running session; an expired one is forgotten (lock held)."""
        session = self._sessions.get(sid)
        if session is None:
            return False
        if session.expires_s <= now_s:
            del self._sessions[sid]
            return False
        return True

    def user(self, cookie: str | None, now_s: float) -> str | None:
        """The user of a running session, else None (unknown, ended, expired, forged)."""
        sid = self._sid(cookie)
        if sid is None:
            return None
        with self._lock:
            return self._sessions[sid].user if self._live(sid, now_s) else None

    def end(self, cookie: str | None) -> bool:
        """Log out: the session ends for every holder of its cookie."""
        sid = self._sid(cookie)
        if sid is None:
            return False
        with self._lock:
            session = self._sessions.pop(sid, None)
            if session is None:
                return False
            rest = [s for s in self._by_user.get(session.user, []) if s != sid]
            if rest:
                self._by_user[session.user] = rest
            else:
                self._by_user.pop(session.user, None)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


# -- failed logins --------------------------------------------------------------------


@dataclass
class _Failures:
    count: int = 0
    last_s: float = 0.0


class LoginThrottle:
    """Back-off after failed logins, per user name and per client address: after
    `free_failures` failures in a row, every further attempt waits, 1 s after the first
    lockout and twice as long after each further failure, up to `max_s`; a locked key is
    answered without checking the password (no CPU for guesses). An attempt counts as a
    failure from its start (so parallel guesses cannot slip past the limit) and a success
    clears it. Unknown user names count too (no oracle of who exists). At most `max_keys`
    keys are kept (the longest unused goes first) and a key with no failure for
    `forget_s` is forgotten. Pure: the caller passes the time."""

    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_s: float = 1.0,
        max_s: float = 300.0,
        forget_s: float = 900.0,
        max_keys: int = 10_000,
    ) -> None:
        self.free_failures = free_failures
        self.base_s = base_s
        self.max_s = max_s
        self.forget_s = max(forget_s, max_s)
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def keys(user: str, address: str | None) -> list[str]:
        """The throttled keys of one attempt (a long unknown name is cut: same key)."""
        return [f"user\0{user[:65]}", f"addr\0{address or '?'}"]

    def _delay(self, failures: int) -> float:
        over = failures - self.free_failures
        if over < 0:
            return 0.0
        return min(self.max_s, self.base_s * 2.0 ** min(over, 64))

    def _retry_after(self, key: str, now_s: float) -> float:
        f = self._keys.get(key)
        if f is None:
            return 0.0
        if now_s - f.last_s >= self.forget_s:
            del self._keys[key]
            return 0.0
        return max(0.0, f.last_s + self._delay(f.count) - now_s)

    def attempt(self, keys: Iterable[str], now_s: float) -> float:
        """0 when the attempt may go ahead (it is counted as a failure until `succeeded`),
        else the seconds to wait (the attempt is refused and not counted)."""
        keys = list(keys)
        with self._lock:
            wait = max(self._retry_after(k, now_s) for k in keys)
            if wait > 0:
                return wait
            for k in keys:
                f = self._keys.pop(k, None) or _Failures()
                f.count += 1
                f.last_s = now_s
                self._keys[k] = f  # most recently used last
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
            return 0.0

    def succeeded(self, keys: Iterable[str]) -> None:
        with self._lock:
            for k in keys:
                self._keys.pop(k, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)


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
