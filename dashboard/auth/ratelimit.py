"""Failed sign-ins counted in Redis, per user name and per client address, over a fixed window.

When either count has reached its limit, sign-in is refused without checking the password
until the window (started by the first failure) has passed. A success clears the user's count
(not the address's: one address guessing many names stays limited)."""

from __future__ import annotations

import hashlib

import redis

from schemas.settings import Settings


class SigninLimiter:
    def __init__(self, r: redis.Redis, settings: Settings):
        self.r = r
        self.prefix = f"{settings.redis_prefix}web:signin:"
        self.window = settings.web_signin_window_s
        self.max_user = settings.web_signin_max_per_user
        self.max_addr = settings.web_signin_max_per_address

    def _keys(self, user: str | None, address: str | None) -> list[str]:
        """The counters a failure of ``user`` (None: no user, e.g. a wall token) from ``address`` counts in."""
        keys = [f"{self.prefix}a:{address or '-'}"]
        if user is not None:
            # Hashed: a user name typed into the form is anything; keys stay short and printable.
            keys.append(f"{self.prefix}u:{hashlib.sha256(user.strip().lower().encode()).hexdigest()[:32]}")
        return keys

    def blocked(self, user: str | None, address: str | None) -> bool:
        counts = [int(n or 0) for n in self.r.mget(self._keys(user, address))]
        return counts[0] >= self.max_addr or (len(counts) > 1 and counts[1] >= self.max_user)

    def failed(self, user: str | None, address: str | None) -> None:
        pipe = self.r.pipeline(transaction=False)
        for k in self._keys(user, address):
            pipe.incr(k)
            pipe.expire(k, self.window, nx=True)
        pipe.execute()

    def succeeded(self, user: str, address: str | None) -> None:
        self.r.delete(self._keys(user, address)[1])
