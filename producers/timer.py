"""``RequestTimer``: time one request with a ``with`` block and record it on exit.

Durations come from ``time.perf_counter`` (monotonic, sub-microsecond), never
from differences of wall-clock times, which jump with NTP. The event's
timestamp is the wall clock when the request finished, like ``record_request``.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleetpulse.producers.recorder import Recorder


class RequestTimer:
    """Set ``input_tokens``, ``output_tokens``, ``finish_reasons``, ``text`` (the
    response, analysed on the recorder's thread and never sent)... inside the block;
    call ``first_token()`` when the first token is out. If the block raises, the
    event gets ``error.type`` = the exception's class name, and the exception
    propagates unchanged."""

    __slots__ = ("_recorder", "_start", "model", "node", "ttft", "tpot", "queue_time", "input_tokens",
                 "output_tokens", "error_type", "finish_reasons", "operation", "gpu", "request_id", "trace_id",
                 "text", "expect_format", "cache_read_tokens", "tenant")

    def __init__(self, recorder: Recorder, model: str, node: str, *, queue_time: float | None = None,
                 input_tokens: int = 0, operation: str | None = None, gpu: str | None = None,
                 request_id: str | None = None, trace_id: str | None = None, expect_format: str | None = None,
                 cache_read_tokens: int | None = None, tenant: str | None = None):
        self._recorder = recorder
        self.model, self.node = model, node
        self.ttft = self.tpot = None
        self.queue_time = queue_time
        self.input_tokens, self.output_tokens = input_tokens, 0
        self.error_type = self.finish_reasons = None
        self.operation, self.gpu, self.request_id, self.trace_id = operation, gpu, request_id, trace_id
        self.text, self.expect_format, self.cache_read_tokens = None, expect_format, cache_read_tokens
        self.tenant = tenant

    def first_token(self) -> None:
        """Mark the first output token: sets ``ttft`` from the start of the block."""
        self.ttft = perf_counter() - self._start

    def __enter__(self) -> RequestTimer:
        self._start = perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        duration = perf_counter() - self._start
        if exc_type is not None and self.error_type is None:
            self.error_type = exc_type.__name__
        tpot = self.tpot
        if tpot is None and self.ttft is not None and self.output_tokens > 1:
            tpot = (duration - self.ttft) / (self.output_tokens - 1)
        self._recorder.record_request(
            self.model, self.node, duration, ttft=self.ttft, tpot=tpot, queue_time=self.queue_time,
            input_tokens=self.input_tokens, output_tokens=self.output_tokens, error_type=self.error_type,
            finish_reasons=self.finish_reasons, operation=self.operation, gpu=self.gpu,
            request_id=self.request_id, trace_id=self.trace_id, text=self.text,
            expect_format=self.expect_format, cache_read_tokens=self.cache_read_tokens, tenant=self.tenant)
        return False
