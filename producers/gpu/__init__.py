"""GPU telemetry: NVML (or a recording) -> v1 GPU samples -> the gpu topic.

``nvml`` reads the driver behind a small interface, ``recorded`` replays a
recording through the same interface, and ``sampler`` is the daemon
(``fleetpulse gpu-sampler``, or ``python -m fleetpulse.producers.gpu``).
"""

from fleetpulse.producers.gpu.nvml import NvmlSource, PynvmlSource
from fleetpulse.producers.gpu.recorded import RecordedNvmlSource
from fleetpulse.producers.gpu.sampler import GpuSampler, run_gpu_sampler

__all__ = ["GpuSampler", "NvmlSource", "PynvmlSource", "RecordedNvmlSource", "run_gpu_sampler"]
