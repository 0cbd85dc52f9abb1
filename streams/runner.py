"""``fleetpulse worker``: check the services, migrate, then run the faust worker."""

from __future__ import annotations

import logging

import faust

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import migrate
from fleetpulse.settings import Settings
from fleetpulse.streams.app import build_app
from fleetpulse.topics import check_kafka, ensure_topics

log = logging.getLogger("fleetpulse.worker")


def run_worker(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM. Fails fast, with one line, when a service is missing."""
    check_kafka(settings, timeout=10)
    ensure_topics(settings)
    ch = ClickHouse(settings)
    migrate(ch, log=lambda line: log.info("migrate: %s", line))
    app, handler = build_app(settings, ch)
    # faust's own INFO chatter drowns ours; it speaks up at debug level only.
    faust_level = "debug" if settings.log_level == "debug" else "warning"
    logging.getLogger("fleetpulse").setLevel(settings.log_level.upper())
    worker = faust.Worker(app, loglevel=faust_level, quiet=True)
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
