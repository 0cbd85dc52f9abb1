"""PynvmlSource over a made-up driver: units, MIG instances, XIDs, unsupported
fields as null, and the one clear error when there is no driver."""

from __future__ import annotations

import sys
import types
import warnings
from types import SimpleNamespace

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.producers.gpu.nvml import MIG_FIELDS, NO_DRIVER, PynvmlSource
from fleetpulse.producers.gpu.sampler import GpuSampler
from fleetpulse.schemas import validate_event

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import pynvml as real

_NO_ANSWER = object()


class FakeNvml(types.ModuleType):
    """pynvml over made-up GPUs, with the real error classes and constants.

    A GPU (its own handle) is a dict of answers keyed by call name, or by
    ``(call name, *arguments)``. A call it has no answer for raises
    NVMLError_NotSupported, as NVML does for what a device cannot report; an
    answer that is an NVMLError class is raised.
    """

    def __init__(self, gpus: list[dict], init_error: type | None = None):
        super().__init__("pynvml")
        for name in dir(real):
            if name.startswith(("NVML", "nvmlEventType", "nvmlMemory_v")):
                setattr(self, name, getattr(real, name))
        self.gpus, self.init_error = gpus, init_error

    def nvmlInit(self):
        if self.init_error is not None:
            raise self.init_error()

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        return self.gpus[index]

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle, slot):
        device = handle["mig"][slot]
        if device is None:
            raise real.NVMLError_NotFound()
        return device

    def nvmlEventSetCreate(self):
        return []

    def nvmlDeviceRegisterEvents(self, handle, kinds, event_set):
        if "xid" not in handle:
            raise real.NVMLError_NotSupported()
        event_set.append(handle)

    def nvmlEventSetWait_v2(self, event_set, timeout_ms):
        for handle in event_set:
            if handle["xid"]:
                return SimpleNamespace(eventData=handle["xid"].pop(0))
        raise real.NVMLError_Timeout()

    def nvmlEventSetFree(self, event_set):
        pass

    def __getattr__(self, name):
        if not name.startswith("nvmlDevice"):
            raise AttributeError(name)

        def call(handle, *args):
            answer = handle.get((name, *args), handle.get(name, _NO_ANSWER))
            if answer is _NO_ANSWER:
                raise real.NVMLError_NotSupported()
            if isinstance(answer, type) and issubclass(answer, real.NVMLError):
                raise answer()
            return answer
        return call


def h100(uuid: str, **answers) -> dict:
    """An H100 answering every call the sampler makes (NVML units: mW, mJ, KB/s)."""
    base = {
        "nvmlDeviceGetUUID": uuid,
        "nvmlDeviceGetName": b"NVIDIA H100 80GB HBM3",  # older pynvml returns bytes
        "nvmlDeviceGetUtilizationRates": SimpleNamespace(gpu=87, memory=41),
        "nvmlDeviceGetMemoryInfo": SimpleNamespace(used=72477573120, total=85520809984, free=0),
        ("nvmlDeviceGetTemperature", real.NVML_TEMPERATURE_GPU): 64,
        "nvmlDeviceGetPowerUsage": 512300,
        "nvmlDeviceGetEnforcedPowerLimit": 700000,
        "nvmlDeviceGetTotalEnergyConsumption": 91234567125,
        ("nvmlDeviceGetClockInfo", real.NVML_CLOCK_SM): 1980,
        ("nvmlDeviceGetClockInfo", real.NVML_CLOCK_MEM): 2619,
        "nvmlDeviceGetCurrentClocksEventReasons": 4,
        ("nvmlDeviceGetTotalEccErrors", real.NVML_MEMORY_ERROR_TYPE_CORRECTED, real.NVML_VOLATILE_ECC): 3,
        ("nvmlDeviceGetTotalEccErrors", real.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, real.NVML_VOLATILE_ECC): 1,
        ("nvmlDeviceGetPcieThroughput", real.NVML_PCIE_UTIL_TX_BYTES): 1220703,
        ("nvmlDeviceGetPcieThroughput", real.NVML_PCIE_UTIL_RX_BYTES): 302734,
        "nvmlDeviceGetComputeRunningProcesses": [SimpleNamespace(pid=4127, usedGpuMemory=71940702208)],
    }
    return {**base, **answers}


def mig(uuid: str, used: int) -> dict:
    """A MIG instance: its own UUID, name, memory and processes; device-wide calls unsupported."""
    return {"nvmlDeviceGetUUID": uuid, "nvmlDeviceGetName": "NVIDIA H100 80GB HBM3 MIG 3g.40gb",
            "nvmlDeviceGetMemoryInfo": SimpleNamespace(used=used, total=42949672960, free=0),
            "nvmlDeviceGetComputeRunningProcesses": [SimpleNamespace(pid=900, usedGpuMemory=None)]}


@pytest.fixture
def fake_driver(monkeypatch):
    """Install a FakeNvml as the pynvml module PynvmlSource imports."""
    def install(gpus: list[dict], init_error: type | None = None) -> FakeNvml:
        fake = FakeNvml(gpus, init_error)
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        return fake
    return install


def two_gpus() -> list[dict]:
    """GPU 0 in MIG mode with instances in slots 0 and 2 (utilization is not
    reported in MIG mode) and XIDs queued; GPU 1 without MIG, XID events or PCIe counters."""
    with_mig = h100("GPU-0000", **{"nvmlDeviceGetMigMode": [real.NVML_DEVICE_MIG_ENABLE, real.NVML_DEVICE_MIG_ENABLE],
                                   "nvmlDeviceGetMaxMigDeviceCount": 7,
                                   "mig": [mig("MIG-aaaa", 10 << 30), None, mig("MIG-bbbb", 20 << 30)] + [None] * 4,
                                   "xid": [79, 13]})
    del with_mig["nvmlDeviceGetUtilizationRates"]
    plain = h100("GPU-1111")
    for direction in (real.NVML_PCIE_UTIL_TX_BYTES, real.NVML_PCIE_UTIL_RX_BYTES):
        del plain[("nvmlDeviceGetPcieThroughput", direction)]
    return [with_mig, plain]


def test_readings_are_in_schema_units(fake_driver):
    fake_driver(two_gpus())
    gpu1 = PynvmlSource().read()[-1]
    assert gpu1 == {
        "gpu.uuid": "GPU-1111", "gpu.index": 1, "gpu.name": "NVIDIA H100 80GB HBM3",
        "gpu.utilization": 87, "gpu.memory.utilization": 41,
        "gpu.memory.used": 72477573120, "gpu.memory.total": 85520809984, "gpu.temperature": 64,
        "gpu.power.usage": 512.3, "gpu.power.limit": 700.0, "gpu.energy": 91234567.125,
        "gpu.clock.sm": 1980, "gpu.clock.memory": 2619, "gpu.throttle_reasons": 4, "gpu.ecc.volatile": 4,
        "gpu.pcie.tx": None, "gpu.pcie.rx": None, "gpu.xid": None,
        "gpu.processes": [{"pid": 4127, "used_memory": 71940702208}],
    }


def test_mig_instances_get_their_own_reading_after_their_parent(fake_driver):
    fake_driver(two_gpus())
    readings = PynvmlSource().read()
    assert [(r["gpu.uuid"], r["gpu.index"]) for r in readings] == [
        ("GPU-0000", 0), ("MIG-aaaa", 0), ("MIG-bbbb", 0), ("GPU-1111", 1)]
    parent, first, second = readings[:3]
    assert parent["gpu.utilization"] is None and parent["gpu.power.usage"] == 512.3
    assert set(first) == {"gpu.uuid", "gpu.index", *MIG_FIELDS}
    assert (first["gpu.memory.used"], second["gpu.memory.used"]) == (10 << 30, 20 << 30)
    assert first["gpu.processes"] == [{"pid": 900, "used_memory": None}]


def test_memory_used_leaves_the_reserved_memory_out_where_the_driver_can(fake_driver):
    """v2 (r510 and later) gives used without the driver's reserved memory, as
    nvidia-smi shows it; a driver without v2 gets v1's figure, not a null."""
    v2 = ("nvmlDeviceGetMemoryInfo", real.nvmlMemory_v2)
    new, old = h100("GPU-4444"), h100("GPU-5555")
    new[v2] = SimpleNamespace(used=1060110336, reserved=503316480, free=83957383168, total=85520809984)
    old[v2] = real.NVMLError_FunctionNotFound
    fake_driver([new, old])
    new, old = PynvmlSource().read()
    assert (new["gpu.memory.used"], new["gpu.memory.total"]) == (1060110336, 85520809984)
    assert (old["gpu.memory.used"], old["gpu.memory.total"]) == (72477573120, 85520809984)


def test_xid_is_the_last_one_seen_and_zero_before_any(fake_driver):
    gpus = two_gpus()
    fake_driver(gpus)
    source = PynvmlSource()
    assert source.read()[0]["gpu.xid"] == 13  # 79, then 13: both drained, the last kept
    assert source.read()[0]["gpu.xid"] == 13
    gpus[0]["xid"] = []
    fake_driver([gpus[0]])
    assert PynvmlSource().read()[0]["gpu.xid"] == 0


def test_a_gpu_without_a_readable_uuid_is_left_out(fake_driver):
    lost = h100("GPU-2222")
    del lost["nvmlDeviceGetUUID"]
    fake_driver([lost, h100("GPU-3333")])
    assert [r["gpu.uuid"] for r in PynvmlSource().read()] == ["GPU-3333"]


def test_driver_readings_become_valid_events(fake_driver):
    fake_driver(two_gpus())

    class Kept:
        sent = failed = dropped = 0

        def record_batch(self, events):
            return len(events)

    events = GpuSampler(PynvmlSource(), "node-1", Kept()).sample()
    assert len(events) == 4
    for event in events:
        validate_event(event, "gpu")


@pytest.mark.parametrize("error", [real.NVMLError_LibraryNotFound, real.NVMLError_DriverNotLoaded])
def test_no_driver_is_one_clear_error(fake_driver, error):
    fake_driver([], init_error=error)
    with pytest.raises(ConfigError, match=NO_DRIVER):
        PynvmlSource()


def test_no_pynvml_is_the_same_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # what an uninstalled module looks like to import
    with pytest.raises(ConfigError, match=f"{NO_DRIVER} \\(the pynvml module is not installed\\)"):
        PynvmlSource()


def test_this_hosts_missing_driver_is_reported_as_such():
    """The real pynvml on a host without the NVIDIA driver (CI)."""
    try:
        PynvmlSource().close()
    except ConfigError as exc:
        assert str(exc).startswith(NO_DRIVER)
    else:
        pytest.skip("this host has an NVIDIA driver; tests/gpu covers it")
