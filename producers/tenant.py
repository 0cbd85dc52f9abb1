"""Tenant ids that never leave the node in the clear (pure).

With ``Recorder(hash_tenants=True, tenant_salt=...)`` the recorder's thread
replaces each tenant by ``blake2b(tenant, key=salt, digest_size=8).hexdigest()``:
16 hex characters, the same for the same tenant and salt on every node (so
per-tenant totals still add up across the fleet), and not reversible without
the salt, even for a guessable id such as an e-mail address. Keep the salt
secret and the same on every node; change it and tenants get new ids.
"""

from __future__ import annotations

import hashlib

from fleetpulse.errors import ConfigError
from fleetpulse.producers.envelope import TENANT

#: Hex characters of a hashed tenant (8 bytes of BLAKE2b).
HASH_CHARS = 16
#: BLAKE2b takes keys of at most 64 bytes.
MAX_SALT_BYTES = 64


def hash_tenant(tenant: str, salt: bytes) -> str:
    """The keyed BLAKE2b hash of ``tenant``, truncated to 16 hex characters."""
    return hashlib.blake2b(tenant.encode(), key=salt, digest_size=HASH_CHARS // 2).hexdigest()


class TenantHasher:
    """Hashes the tenant of recorded calls (envelope.RECORD_FIELDS tuples);
    each distinct tenant is hashed once (a bounded cache)."""

    CACHE = 65536

    def __init__(self, salt: bytes | str):
        salt = salt.encode() if isinstance(salt, str) else bytes(salt)
        if not 0 < len(salt) <= MAX_SALT_BYTES:  # no salt: an e-mail's hash is one guess away
            raise ConfigError(f"tenant_salt: a secret of 1 to {MAX_SALT_BYTES} bytes is needed to hash tenants, "
                             f"got {len(salt)}")
        self._salt = salt
        self._cache: dict[str, str] = {}

    def __call__(self, tenant: str | None) -> str | None:
        if tenant is None:
            return None
        hashed = self._cache.get(tenant)
        if hashed is None:
            if len(self._cache) >= self.CACHE:
                self._cache.clear()
            hashed = self._cache[tenant] = hash_tenant(tenant, self._salt)
        return hashed

    def records(self, items: list) -> list:
        """``items`` with each recorded call's tenant hashed; ready-made dicts
        (record_batch) get their ``fleetpulse.tenant`` hashed too."""
        out = []
        for item in items:
            if type(item) is dict:
                if item.get("fleetpulse.tenant") is not None:
                    item = {**item, "fleetpulse.tenant": self(item["fleetpulse.tenant"])}
            elif item[TENANT] is not None:
                item = (*item[:TENANT], self(item[TENANT]), *item[TENANT + 1:])
            out.append(item)
        return out
