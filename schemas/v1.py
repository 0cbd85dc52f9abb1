"""Version 1 of the wire schemas: request events, GPU samples, alert events.

Field names follow OpenTelemetry's GenAI semantic conventions where they exist
(``gen_ai.*``, ``error.type``, ``host.name``); GPU fields follow the DCGM
exporter's meaning (docs/schemas.md has both mapping tables). Durations are
seconds, timestamps are epoch seconds (float), sizes are bytes.
"""

from __future__ import annotations

from fleetpulse.schemas.fields import MAX_TIMESTAMP, MIN_TIMESTAMP, Field

VERSION = 1
#: One hour: a single request slower than this is a clock or unit bug (ms sent as s).
MAX_DURATION_S = 3600.0
MAX_TOKENS = 10_000_000
#: Longest tenant id: a hashed tenant is 16 hex characters; raw ids up to this.
MAX_TENANT_LENGTH = 128


def _header(kind: str) -> tuple[Field, ...]:
    return (
        Field("type", "string", enum=(kind,), description="Event kind."),
        Field("version", "integer", minimum=VERSION, maximum=VERSION, description="Schema version."),
        Field("timestamp", "number", minimum=MIN_TIMESTAMP, maximum=MAX_TIMESTAMP,
              description="Event time, epoch seconds (UTC). Windows are assigned from this."),
    )


def _seconds(name: str, description: str, required: bool = True) -> Field:
    return Field(name, "number", required=required, nullable=not required, minimum=0.0,
                 maximum=MAX_DURATION_S, description=description + " Seconds.")


def _flag(name: str, description: str) -> Field:
    return Field(name, "integer", required=False, nullable=True, minimum=0, maximum=1, description=description)


REQUEST = _header("request") + (
    Field("request.id", "string", max_length=128, description="Unique id of the request."),
    Field("trace_id", "string", max_length=64, description="W3C trace id, for exemplars."),
    Field("gen_ai.request.model", "string", max_length=256, description="Model name."),
    Field("host.name", "string", max_length=256, description="Inference node."),
    Field("gpu.id", "string", required=False, nullable=True, max_length=128,
          description="GPU that served the request (UUID or index)."),
    Field("gen_ai.operation.name", "string", required=False, nullable=True, max_length=128,
          description="Route or operation, e.g. chat, text_completion, embeddings."),
    _seconds("gen_ai.server.request.duration", "Server-side request duration."),
    _seconds("gen_ai.server.time_to_first_token", "Time to first output token.", required=False),
    _seconds("gen_ai.server.time_per_output_token", "Mean time per output token after the first.",
             required=False),
    _seconds("fleetpulse.queue_time", "Time spent queued before scheduling.", required=False),
    Field("gen_ai.usage.input_tokens", "integer", minimum=0, maximum=MAX_TOKENS,
          description="Prompt tokens."),
    Field("gen_ai.usage.output_tokens", "integer", minimum=0, maximum=MAX_TOKENS,
          description="Generated tokens."),
    Field("gen_ai.response.finish_reasons", "string_list", required=False, nullable=True,
          description="Finish reason per choice, e.g. stop, length, content_filter."),
    Field("error.type", "string", required=False, nullable=True, max_length=128,
          description="Error class when the request failed; null or absent on success."),
    # Output quality, derived on the node from the response text, which never
    # leaves it (producers/quality.py, docs/quality.md). Flags are integers 0/1.
    _flag("fleetpulse.output.refusal", "1 when the response refused: a refusal phrase, or a content_filter finish."),
    _flag("fleetpulse.output.empty", "1 when the response text was blank (empty or only whitespace)."),
    Field("fleetpulse.output.repetition", "number", required=False, nullable=True, minimum=0.0, maximum=1.0,
          description="Share of the response's word trigrams that repeat an earlier one, 0..1."),
    _flag("fleetpulse.output.format_ok",
          "1 when the response parsed in the format asked for (e.g. JSON), 0 when not; absent when none was asked."),
    Field("gen_ai.usage.cache_read.input_tokens", "integer", required=False, nullable=True, minimum=0,
          maximum=MAX_TOKENS, description="Prompt tokens served from the provider's or server's prompt cache."),
    Field("fleetpulse.tenant", "string", required=False, nullable=True, max_length=MAX_TENANT_LENGTH,
          description="Tenant (customer, API key owner) the request is billed to. The SDK can send a keyed "
                      "BLAKE2b hash instead of the raw value (Recorder(hash_tenants=True)); never an e-mail."),
)

GPU = _header("gpu") + (
    Field("host.name", "string", max_length=256, description="GPU host."),
    Field("gpu.uuid", "string", max_length=128, description="GPU UUID (or MIG instance UUID)."),
    Field("gpu.index", "integer", minimum=0, maximum=1024, description="NVML device index."),
    Field("gpu.name", "string", required=False, nullable=True, max_length=256, description="Product name."),
    Field("gpu.utilization", "number", required=False, nullable=True, minimum=0, maximum=100,
          description="DCGM_FI_DEV_GPU_UTIL, percent."),
    Field("gpu.memory.utilization", "number", required=False, nullable=True, minimum=0, maximum=100,
          description="DCGM_FI_DEV_MEM_COPY_UTIL, percent."),
    Field("gpu.memory.used", "integer", required=False, nullable=True, minimum=0,
          description="DCGM_FI_DEV_FB_USED, bytes."),
    Field("gpu.memory.total", "integer", required=False, nullable=True, minimum=0,
          description="Frame buffer size, bytes."),
    Field("gpu.temperature", "number", required=False, nullable=True, minimum=-50, maximum=200,
          description="DCGM_FI_DEV_GPU_TEMP, degrees Celsius."),
    Field("gpu.power.usage", "number", required=False, nullable=True, minimum=0,
          description="DCGM_FI_DEV_POWER_USAGE, watts."),
    Field("gpu.power.limit", "number", required=False, nullable=True, minimum=0,
          description="Enforced power limit, watts."),
    Field("gpu.energy", "number", required=False, nullable=True, minimum=0,
          description="DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION, joules since driver load."),
    Field("gpu.clock.sm", "number", required=False, nullable=True, minimum=0,
          description="DCGM_FI_DEV_SM_CLOCK, MHz."),
    Field("gpu.clock.memory", "number", required=False, nullable=True, minimum=0,
          description="DCGM_FI_DEV_MEM_CLOCK, MHz."),
    Field("gpu.throttle_reasons", "integer", required=False, nullable=True, minimum=0,
          description="DCGM_FI_DEV_CLOCK_THROTTLE_REASONS bitmask."),
    Field("gpu.ecc.volatile", "integer", required=False, nullable=True, minimum=0,
          description="Volatile ECC errors, total."),
    Field("gpu.pcie.tx", "number", required=False, nullable=True, minimum=0,
          description="PCIe TX throughput, bytes/s."),
    Field("gpu.pcie.rx", "number", required=False, nullable=True, minimum=0,
          description="PCIe RX throughput, bytes/s."),
    Field("gpu.xid", "integer", required=False, nullable=True, minimum=0,
          description="DCGM_FI_DEV_XID_ERRORS, last XID error code."),
)

ALERT = _header("alert") + (
    Field("alert.name", "string", max_length=256, description="Rule name."),
    Field("status", "string", enum=("firing", "resolved"), description="firing or resolved."),
    Field("severity", "string", enum=("info", "warning", "critical"), description="Severity."),
    Field("fingerprint", "string", max_length=64, description="Stable id of the alert's label set."),
    Field("labels", "string_map", description="Alert labels."),
    Field("annotations", "string_map", required=False, nullable=True, description="Summary etc."),
    Field("starts_at", "number", minimum=MIN_TIMESTAMP, maximum=MAX_TIMESTAMP,
          description="When it started firing, epoch seconds."),
    Field("ends_at", "number", required=False, nullable=True, minimum=MIN_TIMESTAMP,
          maximum=MAX_TIMESTAMP, description="When it resolved, epoch seconds."),
    Field("value", "number", required=False, nullable=True, description="The value that crossed the threshold."),
)

#: Every event schema by its ``type``.
SCHEMAS: dict[str, tuple[Field, ...]] = {"request": REQUEST, "gpu": GPU, "alert": ALERT}
