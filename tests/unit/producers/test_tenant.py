"""Tenant hashing: keyed BLAKE2b, 16 hex characters, on the recorder's thread."""

from __future__ import annotations

import hashlib

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.producers.envelope import event_from_record
from fleetpulse.producers.envelope import TENANT
from fleetpulse.producers.tenant import TenantHasher, hash_tenant
from tests.unit.producers.test_recorder import record as rec
from fleetpulse.schemas import validate_event


def test_hash_is_keyed_blake2b_truncated_to_16_hex() -> None:
    hashed = hash_tenant("alice@example.com", b"salt")
    assert hashed == hashlib.blake2b(b"alice@example.com", key=b"salt", digest_size=8).hexdigest()
    assert len(hashed) == 16 and "@" not in hashed
    assert hash_tenant("alice@example.com", b"other") != hashed  # the salt is the key
    assert hash_tenant("alice@example.com", b"salt") == hashed  # stable across nodes with one salt


def test_records_get_their_tenant_hashed_and_stay_valid() -> None:
    hasher = TenantHasher("s3cret")
    record = rec(tenant="bob@example.com")
    plain = rec()
    done = hasher.records([record, plain, {"fleetpulse.tenant": "bob@example.com"}, {"x": 1}])
    assert done[0][TENANT] == hash_tenant("bob@example.com", b"s3cret")
    assert done[0][:TENANT] == record[:TENANT] and done[0][TENANT + 1:] == record[TENANT + 1:]
    assert done[1][TENANT] is None
    assert done[2]["fleetpulse.tenant"] == done[0][TENANT] and done[3] == {"x": 1}
    event = event_from_record(done[0], "r", "t")
    assert event["fleetpulse.tenant"] == done[0][TENANT]
    validate_event(event, "request")
    assert "fleetpulse.tenant" not in event_from_record(plain, "r", "t")


@pytest.mark.parametrize("salt", [b"", "", b"x" * 65])
def test_no_salt_or_one_longer_than_blake2b_takes_is_refused(salt) -> None:
    with pytest.raises(ConfigError):
        TenantHasher(salt)
