"""Decided results survive a failed delivery and go out, in order, exactly once."""

import pytest

from fleetpulse.errors import ClickHouseUnavailable
from fleetpulse.streams.alerting.outbox import Outbox


def test_a_failed_step_stays_pending_and_done_steps_are_not_redone():
    done, down = [], {"on": True}

    def store():
        if down["on"]:
            raise ClickHouseUnavailable("down")
        done.append("store")

    outbox = Outbox()
    outbox.add(lambda: done.append("first"), store, lambda: done.append("publish"))
    with pytest.raises(ClickHouseUnavailable):
        outbox.flush()
    assert done == ["first"] and outbox
    down["on"] = False
    outbox.add(lambda: done.append("next"))
    outbox.flush()
    assert done == ["first", "store", "publish", "next"] and not outbox
