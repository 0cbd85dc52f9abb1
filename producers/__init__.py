"""Producers: the ``Recorder`` SDK inference servers embed, and the fleet simulator.

``from fleetpulse.producers import Recorder`` is the SDK's whole import; the
simulator (``fleetpulse.producers.simulator``) is imported on its own, so an
inference server does not load it.
"""

from fleetpulse.producers.recorder import Recorder
from fleetpulse.producers.timer import RequestTimer

__all__ = ["Recorder", "RequestTimer"]
