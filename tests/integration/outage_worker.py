"""``fleetpulse worker`` with a ClickHouse outage switch, for the backpressure test.

There is no ClickHouse server on this machine to stop, and chDB lives inside
the worker, so the outage is injected at the driver: while the file named by
OUTAGE_FLAG exists, every insert (row or raw, as the window rows' Native blocks are) fails with clickhouse-connect's own
OperationalError (what it raises when a server refuses connections), or, with
OUTAGE_KIND=fatal, a DatabaseError that no retry can fix. Everything
above the driver -- the error mapping, the sink, the retry loop, pausing the
consumer -- is the worker's real code.
"""

import os
import sys

from clickhouse_connect.driver import exceptions
from clickhouse_connect.driver._backendclient import SyncBackendClient
from clickhouse_connect.driver.client import Client

from fleetpulse.cli import main

_flag = os.environ["OUTAGE_FLAG"]


def _failing(real):
    def insert(self, *args, **kwargs):
        if os.path.exists(_flag):
            if os.environ.get("OUTAGE_KIND") == "fatal":  # a statement ClickHouse will never accept
                raise exceptions.DatabaseError("Code: 16. DB::Exception: No such column in table (injected)")
            raise exceptions.OperationalError("Error connecting to ClickHouse: [Errno 111] Connection refused "
                                              "(injected)")
        return real(self, *args, **kwargs)
    return insert


Client.insert = _failing(Client.insert)
SyncBackendClient.raw_insert = _failing(SyncBackendClient.raw_insert)  # chDB's and HTTP's client
sys.exit(main(["worker"]))
