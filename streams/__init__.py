"""The worker's stream processing, one subpackage per concern.

- ``windows``: request messages to window rows. Decode to columns, event-time
  watermarks (per partition and for the fleet), log-bucket sketches, rows in
  ClickHouse's Native format, and the ClickHouse sink that writes them.
- ``drift``: drift features, statistics (PSI, KS, JS), the evaluator that
  judges every closed window, and frozen baselines.
- ``alerting``: rules (YAML), the alert engine (state machine, silences,
  inhibition), its evaluator on closed windows, and where alerts go.
- ``gpu``: NVML samples to rows, and the GPU windows computed from them.
- ``prometheus``: the pipeline's own metrics and the exact re-export of
  request telemetry.
- ``worker``: the only faust code. The app and its agents, the batch consumer,
  "durable, then ack", /health, the HTTP endpoints, and ``fleetpulse worker``.

Pure modules (no Kafka, ClickHouse or HTTP) say so in their docstring; the
import-linter contracts in pyproject.toml hold them to it.
"""
