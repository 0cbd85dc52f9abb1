"""``fleetpulse worker``: check the services, migrate, then run the faust worker."""

from __future__ import annotations

import logging
import socket

import faust

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import ConfigError
from fleetpulse.migrate import migrate
from fleetpulse.settings import Settings
from fleetpulse.streams.app import build_app
from fleetpulse.topics import check_kafka, ensure_topics

log = logging.getLogger("fleetpulse.worker")


def run_worker(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM. Fails fast, with one line, when a service is missing."""
    _require_free_port(settings)
    check_kafka(settings, timeout=10)
    ensure_topics(settings)
    ch = ClickHouse(settings)
    migrate(ch, log=lambda line: log.info("migrate: %s", line))
    app, handler = build_app(settings, ch)
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
        ch.close()
    return 0


def _require_free_port(settings: Settings) -> None:
    with socket.socket() as probe:
        # SO_REUSEADDR as the web server uses: a killed worker's TIME_WAIT sockets are no conflict.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.http_host, settings.http_port))
        except OSError as exc:
            raise ConfigError(f"{settings.http_host}:{settings.http_port} is in use ({exc.strerror}): is another "
                              "worker running? Set FLEETPULSE_HTTP_PORT to a free port.") from exc


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
