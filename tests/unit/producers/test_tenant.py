"""Tenant hashing: keyed BLAKE2b, 16 hex characters, on the recorder's thread."""

from __future__ import annotations

import hashlib

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.producers.envelope import event_from_record
from fleetpulse.producers.tenant import TenantHasher, hash_tenant
from fleetpulse.schemas import validate_event


def test_hash_is_keyed_blake2b_truncated_to_16_hex() -> None:
    hashed = hash_tenant("alice@example.com", b"salt")
    assert hashed == hashlib.blake2b(b"alice@example.com", key=b"salt", digest_size=8).hexdigest()
    assert len(hashed) == 16 and "@" not in hashed
    assert hash_tenant("alice@example.com", b"other") != hashed  # the salt is the key
    assert hash_tenant("alice@example.com", b"salt") == hashed  # stable across nodes with one salt


def test_records_get_their_tenant_hashed_and_stay_valid() -> None:
    hasher = TenantHasher("s3cret")
    record = (1.7e9, "m", "n", 0.5, None, None, None, 3, 4, None, None, None, None, "r", "t", "bob@example.com")
    plain = (*record[:15], None)
    done = hasher.records([record, plain, {"fleetpulse.tenant": "bob@example.com"}, {"x": 1}])
    assert done[0][15] == hash_tenant("bob@example.com", b"s3cret")
    assert done[1][15] is None
    assert done[2]["fleetpulse.tenant"] == done[0][15] and done[3] == {"x": 1}
    event = event_from_record(done[0], "r", "t")
    assert event["fleetpulse.tenant"] == done[0][15]
    validate_event(event, "request")
    assert "fleetpulse.tenant" not in event_from_record(record[:15], "r", "t")  # old 15-field records


@pytest.mark.parametrize("salt", [b"", "", b"x" * 65])
def test_no_salt_or_one_longer_than_blake2b_takes_is_refused(salt) -> None:
    with pytest.raises(ConfigError):
        TenantHasher(salt)
