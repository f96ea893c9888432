"""The Redis behind ``OBO_CACHE_URL``: short timeouts, a circuit breaker, never an error.

Every operation answers within one socket timeout (90 ms, no retries) or not at all: a
failure of any kind (down, slow, refusing authentication, out of memory, failing over) opens
the breaker, and for ``BREAKER_INTERVAL`` seconds operations answer "nothing" at once, with
one warning per ``WARNING_INTERVAL``. After an interval one operation probes again; the
first success closes the breaker. Microsoft.Identity.Web's ``MsalDistributedTokenCacheAdapter``
does the same for its L2 (any exception is logged and treated as a miss; source:
github.com/AzureAD/microsoft-identity-web, src/Microsoft.Identity.Web.TokenCache/Distributed).

``rediss://`` without a password authenticates with Microsoft Entra ID as the managed
identity (``AZURE_CLIENT_ID`` names a user-assigned one), through redis-entraid, as Azure
Managed Redis with access keys disabled requires ("Use Microsoft Entra ID for cache
authentication", learn.microsoft.com/azure/redis/entra-for-authentication).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("obo.shared_cache")
T = TypeVar("T")

OPERATION_TIMEOUT = 0.09  # seconds, connect and each command: a detour stays within 100 ms
IDENTITY_TIMEOUT = 1.0  # seconds for the managed identity's token, on the first login only
BREAKER_INTERVAL = 5.0  # seconds without Redis after a failure, then one probe
WARNING_INTERVAL = 60.0  # at most one warning this often while Redis keeps failing
REDIS_RESOURCE = "https://redis.azure.com/"  # the Entra resource of Azure (Managed) Redis

# Deletes the lock only if it still holds our token: a leader whose lock expired and was
# taken by another instance must not release that one ("Distributed locks with Redis",
# redis.io/docs/latest/develop/use/patterns/distributed-locks).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


class Breaker:
    """Closed, or open until a time; once that passes, one caller probes per interval."""

    def __init__(self, clock: Callable[[], float], interval: float = BREAKER_INTERVAL) -> None:
        self._clock = clock
        self.interval = interval
        self.open_until: float | None = None
        self._lock = threading.Lock()

    def allow(self) -> bool:
        if self.open_until is None:
            return True
        with self._lock:
            now = self._clock()
            if self.open_until is None or now < self.open_until:
                return self.open_until is None
            self.open_until = now + self.interval  # this caller probes; the others skip
            return True

    def failed(self) -> None:
        self.open_until = self._clock() + self.interval

    def succeeded(self) -> bool:
        """True when this closed an open breaker."""
        was_open, self.open_until = self.open_until is not None, None
        return was_open


class RedisStore:
    """``get``/``put``/``delete``/``lock``/``poll`` on one Redis; ``None`` means unavailable."""

    def __init__(
        self,
        url: str,
        *,
        ca_bundle: str | None,
        clock: Callable[[], float],
        identity_client_id: str | None = None,
    ) -> None:
        """``identity_client_id``: a user-assigned managed identity (``AZURE_CLIENT_ID``,
        ``Settings.managed_identity_client_id``) for Entra authentication; None: the
        system-assigned one."""
        parts = urlsplit(url)
        self.where = f"{parts.hostname}:{parts.port or 6379}"  # never the password
        self._secret = unquote(parts.password or "")
        options: dict[str, Any] = {
            "socket_timeout": OPERATION_TIMEOUT,
            "socket_connect_timeout": OPERATION_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),  # one timeout per failure, not three
            "health_check_interval": 0,
        }
        if parts.scheme == "rediss":
            options["ssl_ca_certs"] = ca_bundle  # added to the system roots
            if not parts.password:
                options["credential_provider"] = _entra_credentials(identity_client_id)
        self._redis = redis.Redis.from_url(url, **options)
        self._release = self._redis.register_script(_RELEASE)
        self.breaker = Breaker(clock)
        self._clock = clock
        self._warned_at: float | None = None
        self._warn_lock = threading.Lock()

    def get(self, name: str) -> bytes | None:
        value = self._run(lambda r: r.get(name))
        return value if isinstance(value, bytes) else None

    def put(self, name: str, value: bytes, ttl_ms: int) -> None:
        self._run(lambda r: r.set(name, value, px=ttl_ms))

    def delete(self, name: str) -> bool:
        """False when Redis could not be told (the entry then lives until its TTL)."""
        return self._run(lambda r: r.delete(name)) is not None

    def lock(self, name: str, ttl_ms: int) -> str | None:
        """A token if this caller now holds ``name``; ``None`` if another does, or no Redis."""
        token = secrets.token_hex(16)
        return token if self._run(lambda r: r.set(name, token, nx=True, px=ttl_ms)) else None

    def unlock(self, name: str, token: str) -> None:
        self._run(lambda r: self._release(keys=[name], args=[token], client=r))

    def poll(self, name: str, lock: str) -> tuple[bytes | None, bool] | None:
        """(the entry, whether ``lock`` is still held) in one round trip; ``None``: no Redis."""

        def both(r: redis.Redis) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            pipe.get(name)
            pipe.exists(lock)
            return pipe.execute()

        answer = self._run(both)
        if answer is None:
            return None
        value, held = answer
        return (value if isinstance(value, bytes) else None), bool(held)

    def _run(self, operation: Callable[[redis.Redis], T]) -> T | None:
        if not self.breaker.allow():
            return None
        try:
            result = operation(self._redis)
        # The one place a Redis failure is absorbed: redis-py raises RedisError, but below it
        # redis-entraid, msal and ssl raise their own types; none may reach the caller.
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)
            return None
        if self.breaker.succeeded():
            log.info("OBO_CACHE_URL (redis %s) answers again; sharing resumed", self.where)
        return result

    def _failed(self, exc: Exception) -> None:
        self.breaker.failed()
        with self._warn_lock:
            now = self._clock()
            if self._warned_at is not None and now - self._warned_at < WARNING_INTERVAL:
                return
            self._warned_at = now
        reason = f"{type(exc).__name__}: {exc}"
        if self._secret:
            reason = reason.replace(self._secret, "***")
        log.warning(
            "OBO_CACHE_URL (redis %s) failed (%s); serving from this instance's cache and "
            "Entra ID, next try in %.0f s",
            self.where,
            reason[:300],
            self.breaker.interval,
        )


def _entra_credentials(client_id: str | None) -> Any:
    """redis-entraid's provider: the managed identity's token for Redis, renewed in the
    background; Redis sees the identity's object id (the token's ``oid``) as the user name.

    Built from its parts rather than ``create_from_managed_identity`` so that the identity
    endpoint gets a timeout and one try: the first login happens on a request's path."""
    import msal
    import requests
    from redis.auth.token_manager import RetryPolicy, TokenManagerConfig
    from redis_entraid.cred_provider import EntraIdCredentialsProvider
    from redis_entraid.identity_provider import ManagedIdentityProvider

    identity = (
        msal.UserAssignedManagedIdentity(client_id=client_id)
        if client_id
        else msal.SystemAssignedManagedIdentity()
    )
    client = msal.ManagedIdentityClient(identity, http_client=_Deadline(requests.Session()))
    renew_at = TokenManagerConfig(0.7, 0, int(IDENTITY_TIMEOUT * 1000), RetryPolicy(0, 0))
    return EntraIdCredentialsProvider(ManagedIdentityProvider(client, REDIS_RESOURCE), renew_at)


class _Deadline:
    """MSAL's ``http_client`` with a timeout on every call (msal sets none of its own)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def get(self, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", IDENTITY_TIMEOUT)
        return self._session.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", IDENTITY_TIMEOUT)
        return self._session.post(url, **kwargs)

    def close(self) -> None:
        self._session.close()
