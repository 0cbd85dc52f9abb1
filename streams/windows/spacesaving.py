"""Space-Saving heavy hitters (Metwally, Agrawal and El Abbadi, 2005), fed
whole batches and mergeable across workers (pure).

A summary holds at most ``capacity`` counters (C): each a tenant, an
estimate and that estimate's largest possible over-count. ``floor`` is the
smallest estimate when the summary is full (else 0). Invariants, for N the
requests ever added (``total``) and f(x) a tenant's true count:

- a tenant in the summary: f(x) <= estimate(x) <= f(x) + error(x), error(x) <= floor;
- a tenant not in it: f(x) <= floor;
- floor <= N / C.

So every tenant with more than N/C requests is in the summary, and no
estimate is off by more than N/C. Both operations keep the invariants:

``add(keys, counts)`` merges a batch's exact counts (np.unique over the
batch's tenant codes: a summary with no error). ``merge(a, b)`` merges two
summaries. Either way each tenant's new estimate is its estimate in each
side, or that side's floor where it is absent, summed; the C largest are
kept. An absent tenant's true count is at most the floor, so estimates stay
upper bounds; every candidate is at least the sum of the floors, so the new
floor bounds every error; and the candidates dropped (one per tenant the
other side brought in, when full) each carry at least the floor added for
it, so the sum of the estimates never exceeds N, whence floor <= N/C.
(The classic one-at-a-time update is the special case of a batch of one.)

Only a batch's C largest counts can enter (any other is beaten by C of
them), so a batch of 100,000 tenants costs one np.argpartition and Python
per counter, never per tenant or per event.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Summary:
    capacity: int
    keys: np.ndarray  # object array of str, by estimate descending
    counts: np.ndarray  # int64 estimates
    errors: np.ndarray  # int64 over-count bounds
    total: int = 0  # N

    @classmethod
    def empty(cls, capacity: int) -> "Summary":
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        zero = np.zeros(0, dtype=np.int64)
        return cls(capacity, np.empty(0, dtype=object), zero, zero, 0)

    @classmethod
    def exact(cls, capacity: int, keys, counts) -> "Summary":
        """The summary of exact counts (``keys`` distinct), at most ``capacity`` of them kept."""
        counts = np.asarray(counts, dtype=np.int64)
        keys = np.asarray(keys, dtype=object)
        total = int(counts.sum())
        if len(counts) > capacity:  # only the C largest can be kept; the floor covers the rest
            top = np.argpartition(-counts, capacity)[:capacity + 1]
            keys, counts = keys[top], counts[top]
        out = cls._keep(capacity, keys, counts, np.zeros(len(counts), dtype=np.int64), total)
        return out

    @property
    def floor(self) -> int:
        return int(self.counts[-1]) if len(self.counts) >= self.capacity else 0

    @property
    def bound(self) -> float:
        """N / C: no estimate is off by more."""
        return self.total / self.capacity

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, keys, counts) -> "Summary":
        """This summary with a batch's exact counts per tenant added."""
        return merge(self, Summary.exact(self.capacity, keys, counts))

    def top(self, k: int) -> list[tuple[str, int, int]]:
        """The ``k`` largest (tenant, estimate, error), largest first."""
        return list(zip(self.keys[:k].tolist(), self.counts[:k].tolist(), self.errors[:k].tolist()))

    def estimate(self, key: str) -> int:
        hit = np.flatnonzero(self.keys == key)
        return int(self.counts[hit[0]]) if len(hit) else self.floor

    @staticmethod
    def _keep(capacity: int, keys: np.ndarray, counts: np.ndarray, errors: np.ndarray, total: int) -> "Summary":
        """The ``capacity`` largest, largest first; ties by tenant, so every worker
        and every order of merging picks the same ones."""
        order = np.lexsort((keys.astype(str) if len(keys) else keys, -counts))[:capacity]
        return Summary(capacity, keys[order], counts[order], errors[order], total)


def merge(a: Summary, b: Summary) -> Summary:
    """One summary of both streams (see the module docstring for the bounds)."""
    capacity = min(a.capacity, b.capacity)
    keys = np.concatenate([a.keys, b.keys])
    if not len(keys):
        return Summary(capacity, keys, a.counts, a.errors, a.total + b.total)
    uniq, inverse = np.unique(keys.astype(str), return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.full(len(uniq), a.floor + b.floor, dtype=np.int64)
    errors = counts.copy()
    for side, at in ((a, inverse[:len(a)]), (b, inverse[len(a):])):
        counts[at] += side.counts - side.floor
        errors[at] += side.errors - side.floor
    return Summary._keep(capacity, uniq.astype(object), counts, errors, a.total + b.total)


def merge_all(summaries: list[Summary], capacity: int) -> Summary:
    out = Summary.empty(capacity)
    for s in summaries:
        out = merge(out, s)
    return out
