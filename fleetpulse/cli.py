"""The ``fleetpulse`` command line.

Every failure the user can fix prints one line on stderr, ``fleetpulse: error:
...``, and exits 1; nothing prints a traceback unless FLEETPULSE_LOG_LEVEL=debug.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from fleetpulse.errors import ConfigError, FleetpulseError, RequestError
from fleetpulse.settings import Settings, load_settings


def _kafka(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.localkafka import LocalKafka

    broker = LocalKafka(settings)
    if args.action == "fetch":
        print(f"Apache Kafka {settings.kafka_version} jars in {broker.fetch()}")
    elif args.action == "start":
        broker.start()
        print(broker.status())
    elif args.action == "stop":
        if not broker.stop():
            print("local Kafka broker was not running; nothing to stop")
        print(broker.status())
    else:
        status = broker.status()
        print(status)
        return 0 if status.running else 3
    return 0


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.topics import ensure_topics, topic_specs

    created = set(ensure_topics(settings))
    for spec in topic_specs(settings):
        state = "created" if spec.name in created else "exists"
        print(f"{spec.name:<40} partitions={spec.partitions:<3} {state}")
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.clickhouse import ClickHouse
    from fleetpulse.migrate import migrate

    ch = ClickHouse(settings)
    try:
        applied = migrate(ch)
        print(f"{ch.where}: database {settings.clickhouse_database} is up to date"
              f" ({len(applied)} migration{'s' if len(applied) != 1 else ''} applied now)")
    finally:
        ch.close()
    return 0


def _schema(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.schema import generate

    sys.stdout.write(generate())
    return 0


def _dashboards(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    import orjson

    from fleetpulse.streams.panels.dashboards import DASHBOARDS
    from fleetpulse.streams.panels.grafana import grafana_dashboard

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for d in DASHBOARDS:
        path = out / f"{d.uid}.json"
        path.write_bytes(orjson.dumps(grafana_dashboard(d, settings.window_seconds), option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {path} ({len(d.panels)} panels)")
    return 0


def _query(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.querycli import format_table, query_json_lines

    lines = query_json_lines(settings, args.sql)
    if args.format == "json":
        sys.stdout.write(lines.decode())
    else:
        print(format_table(lines))
    return 0


def _cardinality(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.cardinality import flagged, render
    from fleetpulse.cardinalitycli import prometheus_cardinality, worker_report

    if args.prometheus:
        if args.watch is not None:
            raise RequestError("--watch reads the worker's /metrics; with --prometheus the window is --over")
        over = _seconds(args.over, "--over")
        if not over > 0:
            raise RequestError(f"--over {args.over!r}: expected a positive duration like 30m, 2h or 1d")
        report = prometheus_cardinality(args.prometheus, over, args.top)
    else:
        if (args.watch is not None and not args.watch > 0) or (args.every is not None and not args.every > 0):
            raise RequestError("--watch and --every take a positive number of seconds")
        report = worker_report(settings, args.watch, args.every)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 3 if flagged(report) else 0


def _drift_baseline(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.querycli import build_baseline_anywhere

    result = build_baseline_anywhere(settings, args.model, _epoch(args.start), _epoch(args.end), args.feature)
    version = result.pop("version")
    print(f"baseline v{version} of {args.model}: " + ", ".join(f"{f}={n}" for f, n in result.items()))
    return 0


def _epoch(text: str) -> float:
    """Epoch seconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    from datetime import datetime, timezone

    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{text!r}: expected epoch seconds or an ISO 8601 time like 2026-11-24T13:00") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _silence(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.querycli import silence_anywhere

    if args.silence_command == "add":
        matchers = dict(_pair(m) for m in args.match)
        answer = silence_anywhere(settings, {"action": "add", "matchers": matchers, "seconds": _seconds(args.duration),
                                             "comment": args.comment})
        print(f"silence {answer['id']} added: {matchers} for {args.duration}")
    elif args.silence_command == "list":
        rows = silence_anywhere(settings, {"action": "list"})["silences"]
        for s in rows:
            until = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s["ends_at"]))
            print(f"{s['id']}  until {until} UTC  {s['matchers']}  {s['comment']}")
        print(f"({len(rows)} active)")
    else:
        silence_anywhere(settings, {"action": "expire", "id": args.id})
        print(f"silence {args.id} expired")
    return 0


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ConfigError(f"--match {text!r}: expected LABEL=VALUE, e.g. alertname=HighErrorRate")
    return name, value


def _seconds(text: str, option: str = "--for") -> float:
    """30m, 2h, 1d or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"{option} {text!r}: expected a duration like 30m, 2h or 1d") from exc


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _gpu_sampler(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.producers.gpu import sampler

    return sampler.run(settings, args)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.streams.worker.main import run_worker

    return run_worker(settings)


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.producers.sim_quality import QualityShares
    from fleetpulse.producers.simulator import Drift, SimulationConfig, run_simulation
    from fleetpulse.producers.tenant_traffic import TenantSpike
    from fleetpulse.topics import check_kafka

    check_kafka(settings, timeout=10)  # one clear line now, not a stream of retries later

    config = SimulationConfig(
        nodes=args.nodes, models=args.models, rate=args.rate, duration_s=args.duration,
        count=args.count, seed=args.seed, start=args.start, error_rate=args.error_rate,
        burst_every_s=args.burst_every, burst_len_s=args.burst_len, burst_error_rate=args.burst_error_rate,
        drifts=tuple(Drift.parse(d) for d in args.drift), gpu_samples=args.gpu_samples,
        window_seconds=settings.window_seconds, single_events=args.single_events, pace=args.pace,
        quality=QualityShares(args.refusal_share or 0.0, args.truncation_share or 0.0, args.repetition_share or 0.0)
        if args.quality or any(s is not None for s in (args.refusal_share, args.truncation_share,
                                                       args.repetition_share)) else None,
        tenants=args.tenants, tenant_zipf=args.tenant_zipf,
        tenant_spikes=tuple(TenantSpike.parse(s) for s in args.tenant_spike),
    )
    result = run_simulation(settings, config, truth_path=args.truth, progress=not args.quiet)
    return 130 if result.interrupted else 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from fleetpulse.demo import run_demo

    return run_demo(settings, rate=args.rate, nodes=args.nodes, models=args.models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetpulse",
        description="Streaming telemetry for LLM inference fleets: Kafka -> faust -> ClickHouse + Prometheus. "
                    "Settings come from FLEETPULSE_* environment variables (see the README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="start a local broker, the worker and a simulated fleet (with GPUs); Ctrl-C stops all",
                       description="Start the local Kafka broker (unless FLEETPULSE_KAFKA_BOOTSTRAP is set), "
                                   "create topics, run the worker (which migrates ClickHouse) and a simulated "
                                   "fleet, and print where to look. Ctrl-C stops everything.")
    p.add_argument("--rate", type=float, default=2000.0, help="simulated requests per second (default 2000)")
    p.add_argument("--nodes", type=int, default=4, help="simulated inference nodes (default 4)")
    p.add_argument("--models", type=int, default=3, help="simulated models (default 3)")
    p.set_defaults(run=_demo)

    p = sub.add_parser("worker", help="run the stream worker (faust) with its web server",
                       description="Consume the requests topic, aggregate event-time windows, write them to "
                                   "ClickHouse, serve /metrics, /query, /health, /silences and /drift/baseline on "
                                   "FLEETPULSE_HTTP_PORT. Applies "
                                   "migrations and creates missing topics first.")
    p.set_defaults(run=_worker)

    p = sub.add_parser("simulate", help="send a simulated fleet's request events to Kafka",
                       description="Generate realistic request events (lognormal latency, TTFT, TPOT, token "
                                   "counts, error bursts) for N nodes x M models and send them with the SDK.")
    p.add_argument("--nodes", type=int, default=4, help="inference nodes (default 4)")
    p.add_argument("--models", type=int, default=3, help="models (default 3)")
    p.add_argument("--rate", type=float, default=2000.0, help="events per second of event time (default 2000)")
    span = p.add_mutually_exclusive_group(required=True)
    span.add_argument("--duration", type=float, help="seconds of event time to simulate")
    span.add_argument("--count", type=int, help="number of events to send")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same events (default 0)")
    p.add_argument("--start", type=float,
                   help="event time of the first event, epoch seconds (default: now; with --pace fast, "
                        "early enough that the last event is at now)")
    p.add_argument("--error-rate", type=float, default=0.01, help="baseline error ratio (default 0.01)")
    p.add_argument("--burst-every", type=float, default=60.0,
                   help="seconds between error bursts on one node; 0 turns bursts off (default 60)")
    p.add_argument("--burst-len", type=float, default=10.0, help="length of an error burst, seconds (default 10)")
    p.add_argument("--burst-error-rate", type=float, default=0.3, help="error ratio during a burst (default 0.3)")
    p.add_argument("--pace", choices=("realtime", "fast"), default="realtime",
                   help="realtime: event time follows the clock; fast: send as fast as possible")
    p.add_argument("--single-events", action="store_true",
                   help="one JSON event per Kafka message instead of batch envelopes")
    p.add_argument("--drift", action="append", default=[], metavar="FEATURE=SIZE@SECONDS",
                   help="inject a shift SECONDS of event time after the start, e.g. input_tokens=0.5@300 "
                        "(0.5 sigma of its log scale) or finish_reason=0.3@300 (30%% of stops become length); "
                        "numeric: input_tokens, output_tokens, ttft, tpot, queue_time; categorical: "
                        "finish_reason, operation. Repeatable.")
    p.add_argument("--gpu-samples", action="store_true",
                   help="also send GPU samples for each node's 8 GPUs, following the simulated load")
    p.add_argument("--quality", action="store_true",
                   help="successful requests carry output quality signals, as a Recorder given the response "
                        "text sends them (implied by the three shares below)")
    p.add_argument("--refusal-share", type=float, metavar="SHARE", help="share of answers that are refusals")
    p.add_argument("--truncation-share", type=float, metavar="SHARE",
                   help="share of stop finishes that become length (truncated)")
    p.add_argument("--repetition-share", type=float, metavar="SHARE",
                   help="share of answers that repeat themselves (repetition 0.2..0.95)")
    p.add_argument("--tenants", type=int, default=0,
                   help="give requests a tenant (fleetpulse.tenant) out of N, Zipf-distributed: tenant-000000 "
                        "is the heaviest (default 0: no tenant)")
    p.add_argument("--tenant-zipf", type=float, default=1.1, help="Zipf exponent of --tenants (default 1.1)")
    p.add_argument("--tenant-spike", action="append", default=[], metavar="TENANT@SECONDS[xSHARE]",
                   help="send SHARE (default 0.5) of all traffic to TENANT for one window from SECONDS of event "
                        "time on, e.g. tenant-000042@300. Repeatable.")
    p.add_argument("--truth", help="write exact per-(window, model, node) ground truth as JSON lines here "
                                   "(with --tenants, per (window, tenant) beside it: NAME.tenants.jsonl)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=_simulate)

    p = sub.add_parser("drift", help="drift references: freeze a baseline from stored windows",
                       description="baseline: freeze the bins and counts of MODEL between --from and --to as a "
                                   "new, versioned baseline in ClickHouse (drift_baselines). Models whose "
                                   "FLEETPULSE_DRIFT_REFERENCE is 'baseline' are compared with their newest one.")
    drift_sub = p.add_subparsers(dest="drift_command", required=True, metavar="ACTION")
    b = drift_sub.add_parser("baseline", help="freeze a baseline for one model")
    b.add_argument("--model", required=True, help="model name as in gen_ai.request.model")
    b.add_argument("--from", dest="start", required=True, help="start, epoch seconds or ISO 8601 (UTC)")
    b.add_argument("--to", dest="end", required=True, help="end (exclusive), epoch seconds or ISO 8601 (UTC)")
    b.add_argument("--feature", action="append", help="only these features (repeatable; default: all tracked)")
    b.set_defaults(run=_drift_baseline)

    p = sub.add_parser("silence", help="silence alerts: add, list, expire",
                       description="Silences hold back notifications of alerts whose labels match (they still "
                                   "evaluate). Kept in ClickHouse; every worker applies them.")
    silence_sub = p.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    a = silence_sub.add_parser("add", help="add a silence")
    a.add_argument("--match", action="append", required=True, metavar="LABEL=VALUE",
                   help="label to match, e.g. alertname=HighErrorRate or model=llama (repeatable; all must match)")
    a.add_argument("--for", dest="duration", default="2h", help="how long: 30m, 2h, 1d (default 2h)")
    a.add_argument("--comment", default="", help="why")
    silence_sub.add_parser("list", help="list active silences")
    e = silence_sub.add_parser("expire", help="end a silence now")
    e.add_argument("id", help="the id `silence list` shows")
    p.set_defaults(run=_silence)

    p = sub.add_parser("gpu-sampler", help="sample NVIDIA GPUs with NVML and send them to the gpu topic",
                       description="Read every GPU (and MIG instance) through NVML each interval and send v1 GPU "
                                   "samples to the gpu topic in batches. A field the device does not support is "
                                   "sent as null and counted. With no driver, exits with one clear line.")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default 1)")
    p.add_argument("--count", type=_positive_int, help="stop after this many ticks (default: run until Ctrl-C)")
    p.add_argument("--node", help="host.name to report (default: this host's name)")
    p.add_argument("--recorded", help="replay a recorded NVML file instead of the driver (for tests and demos)")
    p.set_defaults(run=_gpu_sampler)

    p = sub.add_parser("kafka", help="run a local Apache Kafka broker from Maven Central's jars",
                       description="start: fetch the jars with Maven once, format KRaft storage, start one "
                                   "broker/controller on 127.0.0.1:FLEETPULSE_KAFKA_PORT and wait until it is "
                                   "ready. stop: shut it down cleanly. status: exit 0 if running, 3 if not.")
    p.add_argument("action", choices=("start", "stop", "status", "fetch"),
                   help="fetch only downloads the jars (start does it too, once)")
    p.set_defaults(run=_kafka)

    p = sub.add_parser("topics", help="create the topics with their partitions and retention (idempotent)")
    p.set_defaults(run=_topics)

    p = sub.add_parser("migrate", help="apply the ClickHouse DDL in sql/ (idempotent, versioned)")
    p.set_defaults(run=_migrate)

    p = sub.add_parser("schema", help="print the schema a fresh migrate leaves (what sql/schema.sql holds)",
                       description="Migrate a throwaway chDB with default settings and print SHOW CREATE of "
                                   "every function, table and view in it, normalized so every machine prints "
                                   "the same text. Regenerate the checked-in copy with "
                                   "`fleetpulse schema > sql/schema.sql`.")
    p.set_defaults(run=_schema)

    p = sub.add_parser("dashboards", help="write the Grafana dashboards made from the panel catalogue",
                       description="Write one Grafana dashboard JSON per catalogue dashboard into --out. The "
                                   "checked-in copies in infra/grafana/dashboards are made with the default "
                                   "settings: `fleetpulse dashboards --out infra/grafana/dashboards`; a test "
                                   "fails when they are stale. Panels' minimum interval is "
                                   "FLEETPULSE_WINDOW_SECONDS.")
    p.add_argument("--out", required=True, help="folder to write the dashboards into")
    p.set_defaults(run=_dashboards)

    p = sub.add_parser("cardinality", help="report series, label values, churn or explosion: the worker's or a Prometheus's",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Without options: read the worker's own /metrics (FLEETPULSE_HTTP_HOST/PORT, "
                                   "with FLEETPULSE_HTTP_TOKEN when set) and report series per metric family, "
                                   "distinct values per label, the requests whose values were folded into "
                                   "__other__, and, with --watch, series created and removed per hour.\n\n"
                                   "With --prometheus URL: the same for every job of that Prometheus, from its "
                                   "TSDB status API and its scrape statistics over --over; each job is judged "
                                   "churn (series removed per hour high against live ones: labels that change "
                                   "with each deploy), stable explosion (an id's worth of values in one label, "
                                   "few removed) or ok, with the labels responsible and a fix for each.\n\n"
                                   "Exit status: 0 nothing flagged, 3 churn or a stable explosion found, "
                                   "1 the worker or Prometheus could not be read, 2 bad arguments.")
    p.add_argument("--prometheus", metavar="URL", help="report on this Prometheus, e.g. http://127.0.0.1:9090")
    p.add_argument("--over", default="1h",
                   help="with --prometheus: the window for created/removed, e.g. 30m, 6h (default 1h; "
                        "shortened to the data the Prometheus holds)")
    p.add_argument("--watch", type=float, metavar="SECONDS",
                   help="worker only: read /metrics for this long and report series created and removed per hour")
    p.add_argument("--every", type=float, metavar="SECONDS",
                   help="with --watch: seconds between reads (default a fifth of --watch, at least 1)")
    p.add_argument("--top", type=_positive_int, default=10,
                   help="with --prometheus: look at the labels of at most this many jobs (default 10)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")
    p.set_defaults(run=_cardinality)

    p = sub.add_parser("query", help="run read-only SQL (through the worker when it holds chDB)",
                       description="Run one read-only SQL statement. With chDB, goes through the running "
                                   "worker's /query endpoint, or opens chDB itself when no worker runs.")
    p.add_argument("sql", help='e.g. "SELECT * FROM request_stats ORDER BY window_start DESC LIMIT 5"')
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (default) or json: one JSON object per row")
    p.set_defaults(run=_query)
    return parser


def _configure_logging(settings: Settings) -> None:
    """Our loggers at FLEETPULSE_LOG_LEVEL; other libraries' (urllib3 retries,
    the ClickHouse driver) only when something is really wrong, or at debug."""
    debug = settings.log_level == "debug"
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # A filter on the handler, because libraries set their own loggers' levels.
    handler.addFilter(lambda r: debug or r.name.startswith("fleetpulse") or r.levelno >= logging.CRITICAL)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("fleetpulse").setLevel(settings.log_level.upper())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        _configure_logging(settings)
        return args.run(settings, args)
    except FleetpulseError as exc:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        print(f"fleetpulse: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fleetpulse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
