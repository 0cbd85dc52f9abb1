"""``fleetpulse worker``: check the services, migrate, then run the faust worker."""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys

import faust

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import ConfigError
from fleetpulse.migrate import migrate
from fleetpulse.settings import Settings, is_loopback
from fleetpulse.streams.worker.app import build_app
from fleetpulse.streams.worker.query import open_reader
from fleetpulse.streams.worker.threadnames import limit_malloc_arenas
from fleetpulse.prices import load_prices, read_prices
from fleetpulse.topics import check_kafka, ensure_topics

log = logging.getLogger("fleetpulse.worker")


def run_worker(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM. Fails fast, with one line, when a service is missing."""
    _limit_malloc_arenas()
    _return_freed_memory()
    _require_token_beyond_loopback(settings)
    _require_free_port(settings)
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"FLEETPULSE_HOME={str(settings.home)!r} cannot be created: {exc.strerror}") from exc
    prices = read_prices(settings.prices) if settings.prices else None  # a bad file fails now, in one line
    check_kafka(settings, timeout=10)
    ensure_topics(settings)
    ch = ClickHouse(settings)
    migrate(ch, log=lambda line: log.info("migrate: %s", line))
    if prices is not None:
        load_prices(ch, prices)
        log.info("prices: %d models, %d GPU types and nodes from %s", len(prices.models), len(prices.gpus),
                 settings.prices)
    reader = open_reader(settings)
    app, handler = build_app(settings, ch, reader)
    worker = faust.Worker(app, loglevel=_faust_level(settings), quiet=True, logging_config=_logging(settings))
    worker.spinner = None  # a terminal spinner garbles logs written to files and pipes
    log.info("worker for %s; ClickHouse: %s; http://%s:%d/metrics",
             settings.bootstrap, ch.where, settings.http_host, settings.http_port)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        handler.close()
        reader.close()
        ch.close()
    return 0


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Two malloc arenas for the whole worker, before its threads start.

    glibc gives each thread that allocates an arena of its own, up to 8 per
    core, and memory freed in one is reused only there: with chDB's pool
    threads, Kafka's and ours, that is a lot of idle memory. Two arenas
    lowered the soak's peak RSS by 40-50 MiB (docs/architecture.md, "Memory
    under churn"). The MALLOC_ARENA_MAX environment variable, when set, wins."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    if not limit_malloc_arenas(arenas):
        log.debug("mallopt is not available; malloc arenas are left as they are")


#: chDB's jemalloc (its own, linked in; JE_ is its prefix) reads this when
#: libchdb loads. Built in: dirty_decay_ms:5000, so pages chDB frees stay
#: resident 5 s, through the next batches' inserts. Its background thread
#: purges on time: without it jemalloc purges only when chDB allocates again,
#: so an idle worker kept a burst's pages (tests/integration/test_cardinality:
#: growth 313-316 MiB without, 248-289 with).
_CHDB_MALLOC_CONF = "background_thread:true,dirty_decay_ms:200,muzzy_decay_ms:200"


def _return_freed_memory() -> None:
    """Have chDB's allocator give freed pages back within 200 ms, not 5 s.

    chDB allocates with a jemalloc of its own that keeps freed pages 5 s
    (dirty_decay_ms:5000): an INSERT's blocks and its views' hash tables are
    freed within a batch, but sat resident through the next ones. Measured
    with bench's 100k-series run and 1,000,000 events in envelopes, one
    machine, one sitting (anonymous peak, worker CPU per event):
    5000 ms ~590 MiB, 9.1 µs; 200 ms ~520 MiB, 9.0 µs; 0 ms ~465 MiB, 11.2 µs
    (every free unmapped, every next batch faulted in again). Fixing glibc's
    mmap threshold at 128 KiB saved ~140 MiB more but cost ~1.5 µs/event on
    numpy's batch arrays (mapped and faulted anew each batch): not taken.
    It must be set before libchdb loads (on the first ClickHouse connection);
    JE_MALLOC_CONF, when set, wins."""
    if "chdb" in sys.modules:
        log.debug("chDB is loaded already: its allocator keeps its settings")
    else:
        os.environ.setdefault("JE_MALLOC_CONF", _CHDB_MALLOC_CONF)


def _require_token_beyond_loopback(settings: Settings) -> None:
    """/query, /silences and /drift/baseline read and change stored data: never open to a network."""
    if not settings.http_token and not is_loopback(settings.http_host):
        raise ConfigError(f"FLEETPULSE_HTTP_HOST={settings.http_host} is reachable beyond this machine: set "
                          "FLEETPULSE_HTTP_TOKEN to a long random secret (e.g. `openssl rand -hex 32`) first")


def _require_free_port(settings: Settings) -> None:
    host, port = settings.http_host, settings.http_port
    try:
        family, _, _, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"FLEETPULSE_HTTP_HOST={host!r} is not a host name or address ({exc.strerror})") from exc
    with socket.socket(family) as probe:
        # SO_REUSEADDR as the web server uses: a killed worker's TIME_WAIT sockets are no conflict.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"{host}:{port} is in use: is another worker running? "
                                  "Set FLEETPULSE_HTTP_PORT to a free port.") from exc
            raise ConfigError(f"FLEETPULSE_HTTP_HOST={host!r} cannot be bound ({exc.strerror}): "
                              "use an address of this machine, e.g. 127.0.0.1") from exc


def _faust_level(settings: Settings) -> str:
    # faust's own INFO chatter drowns ours; it speaks up at debug level only.
    return "debug" if settings.log_level == "debug" else "warning"


def _logging(settings: Settings) -> dict:
    """faust (mode) applies this with dictConfig at start-up; without it, it would
    disable every logger that already exists, ours included."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"level": _faust_level(settings).upper(), "handlers": ["stderr"]},
        "loggers": {"fleetpulse": {"level": settings.log_level.upper()}},
    }
