"""NVML behind a two-call interface, so the sampler runs the same on a GPU
host (:class:`PynvmlSource`), in CI and in the simulator (``recorded.py``).

A source's ``read()`` returns one *reading* per device and tick: a dict keyed
by v1 GPU field names (``gpu.uuid``, ``gpu.index``, ``gpu.utilization``, ...)
in the schema's units, plus ``gpu.processes``, which v1 does not define (extra
fields are allowed). A value is ``None`` where the device cannot give it: the
sampler sends it as null and counts it, and keeps going.
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable, Protocol

from fleetpulse.errors import ConfigError

log = logging.getLogger(__name__)

NO_DRIVER = "no NVIDIA driver/NVML found on this host"

#: What a MIG instance reports about itself. Power, temperature, clocks and the
#: rest are device-wide, so they are on the parent GPU's reading only.
MIG_FIELDS = ("gpu.name", "gpu.memory.used", "gpu.memory.total", "gpu.processes")


class NvmlSource(Protocol):
    """Where GPU readings come from; see the module docstring for their shape."""

    def read(self) -> list[dict]:
        """One reading per GPU (and per MIG instance), now."""

    def close(self) -> None:
        """Release the driver (or file)."""


def _load_nvml():
    """pynvml, initialised; a missing driver becomes one clear ConfigError."""
    try:
        with warnings.catch_warnings():
            # The `pynvml` distribution is a deprecated shim that warns on import;
            # the module itself is nvidia-ml-py's and is what we want.
            warnings.simplefilter("ignore", FutureWarning)
            import pynvml
    except ImportError as exc:
        raise ConfigError(f"{NO_DRIVER} (the pynvml module is not installed)") from exc
    try:
        pynvml.nvmlInit()
    except (pynvml.NVMLError_LibraryNotFound, pynvml.NVMLError_DriverNotLoaded) as exc:
        raise ConfigError(f"{NO_DRIVER} ({exc})") from exc
    except pynvml.NVMLError as exc:
        raise ConfigError(f"NVML did not start: {exc}") from exc
    return pynvml


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


# Each reader returns the values of its fields, in order, in the schema's units.

def _name(nvml, h):
    return (_text(nvml.nvmlDeviceGetName(h)),)


def _utilization(nvml, h):
    rates = nvml.nvmlDeviceGetUtilizationRates(h)
    return rates.gpu, rates.memory


def _memory(nvml, h):
    # The v2 call leaves the driver's reserved memory out of `used`, as
    # nvidia-smi and DCGM's FB_USED do: on an idle H100 the v1 call says
    # 480 MiB used where nvidia-smi says 0. Drivers before r510 (and some MIG
    # setups) lack v2, and then v1's figure is the best there is.
    version = getattr(nvml, "nvmlMemory_v2", None)
    if version is not None:
        try:
            info = nvml.nvmlDeviceGetMemoryInfo(h, version)
            return info.used, info.total
        except nvml.NVMLError:
            pass
    info = nvml.nvmlDeviceGetMemoryInfo(h)
    return info.used, info.total


def _temperature(nvml, h):
    return (nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU),)


def _power(nvml, h):
    return (nvml.nvmlDeviceGetPowerUsage(h) / 1000,)  # mW


def _power_limit(nvml, h):
    return (nvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000,)  # mW


def _energy(nvml, h):
    return (nvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000,)  # mJ


def _clock(kind: str):
    def read(nvml, h):
        return (nvml.nvmlDeviceGetClockInfo(h, getattr(nvml, kind)),)
    return read


def _throttle_reasons(nvml, h):
    # Renamed in NVML 12.2; older pynvml only has the old name.
    getter = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) \
        or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return (getter(h),)


def _ecc(nvml, h):
    kinds = (nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED)
    return (sum(nvml.nvmlDeviceGetTotalEccErrors(h, kind, nvml.NVML_VOLATILE_ECC) for kind in kinds),)


def _pcie(kind: str):
    def read(nvml, h):
        return (nvml.nvmlDeviceGetPcieThroughput(h, getattr(nvml, kind)) * 1024,)  # KB/s
    return read


def _processes(nvml, h):
    # usedGpuMemory is None where the driver cannot tell (Windows WDDM, some MIG setups).
    return ([{"pid": p.pid, "used_memory": p.usedGpuMemory} for p in nvml.nvmlDeviceGetComputeRunningProcesses(h)],)


Reader = Callable[[object, object], tuple]
_READERS: tuple[tuple[tuple[str, ...], Reader], ...] = (
    (("gpu.name",), _name),
    (("gpu.utilization", "gpu.memory.utilization"), _utilization),
    (("gpu.memory.used", "gpu.memory.total"), _memory),
    (("gpu.temperature",), _temperature),
    (("gpu.power.usage",), _power),
    (("gpu.power.limit",), _power_limit),
    (("gpu.energy",), _energy),
    (("gpu.clock.sm",), _clock("NVML_CLOCK_SM")),
    (("gpu.clock.memory",), _clock("NVML_CLOCK_MEM")),
    (("gpu.throttle_reasons",), _throttle_reasons),
    (("gpu.ecc.volatile",), _ecc),
    (("gpu.pcie.tx",), _pcie("NVML_PCIE_UTIL_TX_BYTES")),
    (("gpu.pcie.rx",), _pcie("NVML_PCIE_UTIL_RX_BYTES")),
    (("gpu.processes",), _processes),
)
_MIG_READERS = tuple((names, read) for names, read in _READERS if set(names) <= set(MIG_FIELDS))


class _XidWatch:
    """The last XID error seen on one GPU since the sampler started (0: none).

    NVML has no getter for it, only an event queue: register once, then drain
    it without waiting on every read. A GPU that cannot register (no events on
    this platform) raises the registration error on every poll, so ``gpu.xid``
    becomes null like any unsupported field.
    """

    _DRAIN_MAX = 64  # per poll, so an event storm cannot stall a tick

    def __init__(self, nvml, handle):
        self._nvml, self.last, self._error, self._set = nvml, 0, None, None
        try:
            self._set = nvml.nvmlEventSetCreate()
            nvml.nvmlDeviceRegisterEvents(handle, nvml.nvmlEventTypeXidCriticalError, self._set)
        except nvml.NVMLError as exc:
            self._error = exc

    def poll(self) -> int:
        if self._error is not None:
            raise self._error.with_traceback(None)  # re-raised every tick: do not grow its traceback
        wait = getattr(self._nvml, "nvmlEventSetWait_v2", None) or self._nvml.nvmlEventSetWait
        for _ in range(self._DRAIN_MAX):
            try:
                self.last = int(wait(self._set, 0).eventData)
            except self._nvml.NVMLError_Timeout:
                break
        return self.last

    def close(self) -> None:
        if self._set is not None:
            self._nvml.nvmlEventSetFree(self._set)


class PynvmlSource:
    """Readings from the NVIDIA driver through pynvml (imported only here).

    GPUs are enumerated once; MIG instances on every read, because MIG can be
    reconfigured while we run. A MIG instance gets its own reading with its
    own UUID and its parent's ``gpu.index``. A GPU whose UUID cannot be read at
    start is left out with a warning: without it, its events mean nothing.
    """

    def __init__(self):
        nvml = self._nvml = _load_nvml()
        self._errors = (nvml.NVMLError, getattr(nvml, "NVMLLibraryMismatchError", nvml.NVMLError))
        self._told: set[tuple[str, str]] = set()
        self._gpus: list[tuple[int, object, str, _XidWatch]] = []
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            nvml.nvmlShutdown()
            raise ConfigError(f"NVML cannot count this host's GPUs: {exc}") from exc
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            except nvml.NVMLError as exc:
                log.warning("GPU %d: cannot read its UUID (%s); not sampled", index, exc)
                continue
            self._gpus.append((index, handle, uuid, _XidWatch(nvml, handle)))

    def read(self) -> list[dict]:
        readings = []
        for index, handle, uuid, xid in self._gpus:
            reading = self._reading(handle, uuid, index, _READERS)
            reading.update(self._read(uuid, ("gpu.xid",), lambda nvml, h: (xid.poll(),), handle))
            readings.append(reading)
            for mig in self._mig_devices(handle):
                try:
                    mig_uuid = _text(self._nvml.nvmlDeviceGetUUID(mig))
                except self._errors:
                    continue  # destroyed between enumeration and now
                readings.append(self._reading(mig, mig_uuid, index, _MIG_READERS))
        return readings

    def close(self) -> None:
        for *_, xid in self._gpus:
            xid.close()
        self._nvml.nvmlShutdown()

    def _reading(self, handle, uuid: str, index: int, readers) -> dict:
        reading = {"gpu.uuid": uuid, "gpu.index": index}
        for names, read in readers:
            reading.update(self._read(uuid, names, read, handle))
        return reading

    def _read(self, uuid: str, names: tuple[str, ...], read: Reader, handle) -> dict:
        """``names`` -> values, or -> None (logged once per device and field) when NVML cannot say."""
        try:
            return dict(zip(names, read(self._nvml, handle)))
        except self._errors as exc:
            if (uuid, names[0]) not in self._told:
                self._told.add((uuid, names[0]))
                log.info("GPU %s: %s not available (%s); sent as null", uuid, ", ".join(names), exc)
            return dict.fromkeys(names)

    def _mig_devices(self, handle) -> list:
        nvml = self._nvml
        try:
            current, _pending = nvml.nvmlDeviceGetMigMode(handle)
            if current != nvml.NVML_DEVICE_MIG_ENABLE:
                return []
            slots = nvml.nvmlDeviceGetMaxMigDeviceCount(handle)
        except self._errors:  # not MIG-capable
            return []
        devices = []
        for slot in range(slots):
            try:
                devices.append(nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot))
            except self._errors:  # an empty slot: NVML_ERROR_NOT_FOUND
                continue
        return devices
