"""BatchFiller: batches bounded by bytes, returned as soon as the budget is
there, and no longer than the wait when the stream trickles."""

from __future__ import annotations

from confluent_kafka import Message

from fleetpulse.streams.worker.librdkafka import BatchFiller


class Stream:
    """consume(n, timeout) over queued messages, as librdkafka does: n of them
    when n are queued, else all there are, after the whole timeout."""

    def __init__(self, sizes: list[int]):
        self.queue = [Message(topic="t", partition=0, offset=i, value=b"x" * n) for i, n in enumerate(sizes)]
        self.calls: list[tuple[int, float]] = []
        self.now = 0.0

    def consume(self, n: int, timeout: float) -> list:
        self.calls.append((n, timeout))
        if len(self.queue) < n:
            self.now += timeout  # waits the whole timeout for more
        got, self.queue = self.queue[:n], self.queue[n:]
        return got


def filler(stream: Stream, max_bytes: int, max_messages: int = 50_000, wait_s: float = 0.5,
           first_guess: int = 1 << 20) -> BatchFiller:
    return BatchFiller(max_bytes, max_messages, wait_s, first_guess, clock=lambda: stream.now)


def test_a_batch_stops_at_the_byte_budget_without_waiting():
    stream = Stream([1000] * 10_000)
    batch = filler(stream, max_bytes=1_000_000).fill(stream.consume)
    assert 1_000_000 <= sum(len(m.value()) for m in batch) < 1_000_000 + 2 * 1000 * 64
    assert stream.now == 0.0  # the budget was there: no waiting
    # The first call asks for one message (1 MiB guessed); then the sizes seen decide.
    assert stream.calls[0][0] == 1 and len(stream.calls) <= 3


def test_large_messages_make_small_batches():
    stream = Stream([270_000] * 1000)
    f = filler(stream, max_bytes=16 << 20)
    for _ in range(3):
        batch = f.fill(stream.consume)
        assert (16 << 20) <= sum(len(m.value()) for m in batch) <= (16 << 20) + 270_000 * 2
    assert stream.now == 0.0


def test_a_trickle_waits_at_most_the_wait():
    stream = Stream([500] * 30)
    batch = filler(stream, max_bytes=16 << 20).fill(stream.consume)
    assert len(batch) == 30 and stream.now <= 0.5 + 1e-9


def test_the_message_cap_holds():
    stream = Stream([10] * 100_000)
    batch = filler(stream, max_bytes=16 << 20, max_messages=5000, first_guess=10).fill(stream.consume)
    assert len(batch) == 5000 and stream.now == 0.0
