"""Where and how a model is timed: device, synchronisation, threads, memory, environment.

torch is never imported here at module level, and only touched when the run already
imported it (a torch or transformers model was loaded): a scikit-learn model is timed
without paying for torch.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llmguard_ops import CheckSkipped

SyncFn = Callable[[], None]


def _torch() -> Any | None:
    """The torch module if this process already imported it, else ``None``."""
    return sys.modules.get("torch")


@dataclass
class Device:
    """The device a model runs on, and how to wait for its queued work."""

    kind: str  # "cpu", "cuda" or "remote" (an HTTP endpoint)
    index: int | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.index}" if self.index is not None else self.kind

    def sync(self) -> SyncFn | None:
        """``torch.cuda.synchronize`` for this device, or ``None`` when nothing is queued."""
        if self.kind != "cuda":
            return None
        torch = _torch()
        assert torch is not None
        index = self.index or 0

        def sync() -> None:
            torch.cuda.synchronize(index)

        return sync


def model_device(obj: Any) -> str:
    """The device a model object runs on: ``cpu``, ``cuda[:N]`` or ``remote``."""
    if getattr(obj, "is_remote", False):
        return "remote"
    device = getattr(obj, "device", None)
    if device is not None:
        return str(device)
    torch = _torch()
    if torch is not None and isinstance(obj, torch.nn.Module):
        for tensor in obj.parameters():
            return str(tensor.device)
        return "cpu"
    return "cpu"


def resolve_device(requested: str, obj: Any) -> Device:
    """Check the asked device against the model's own; skip when CUDA is asked but absent.

    ``auto`` takes the model's device. An explicit device must be the model's (load the
    model with ``options.device`` to move it: the check never moves a model other
    checks share).
    """
    actual = model_device(obj)
    if requested.startswith("cuda"):
        try:
            import torch  # asked for explicitly: worth the import to tell "no CUDA" from "wrong device"
        except ImportError:
            raise CheckSkipped(f"device '{requested}' asked but torch is not installed") from None
        if not torch.cuda.is_available():
            raise CheckSkipped(f"device '{requested}' asked but CUDA is not available on this machine")
    if requested != "auto":
        want = "cuda:0" if requested == "cuda" else requested
        have = "cuda:0" if actual == "cuda" else actual
        if want != have:
            raise ValueError(
                f"the model runs on '{actual}' but the check asks for '{requested}'; load the "
                f"model with options.device: {requested}"
            )
    if actual == "remote":
        return Device("remote")
    if actual.startswith("cuda"):
        index = int(actual.split(":", 1)[1]) if ":" in actual else 0
        return Device("cuda", index, gpu_facts(index))
    return Device("cpu", None, cpu_facts())


def cpu_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {"cpu_count": os.cpu_count()}
    with contextlib.suppress(AttributeError, OSError):
        facts["cpu_affinity"] = len(os.sched_getaffinity(0))
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    facts["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return facts


def gpu_facts(index: int) -> dict[str, Any]:
    """Name, memory, CUDA version; driver and clocks through NVML when it is installed."""
    torch = _torch()
    assert torch is not None
    props = torch.cuda.get_device_properties(index)
    facts: dict[str, Any] = {
        "gpu_name": torch.cuda.get_device_name(index),
        "gpu_memory_mb": round(props.total_memory / 2**20),
        "cuda_version": torch.version.cuda,
        "capability": f"{props.major}.{props.minor}",
    }
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            driver = pynvml.nvmlSystemGetDriverVersion()
            facts["driver"] = driver.decode() if isinstance(driver, bytes) else str(driver)
            facts["sm_clock_mhz"] = pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)
            facts["mem_clock_mhz"] = pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM)
            facts["max_sm_clock_mhz"] = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM)
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # NVML is optional: record why the facts are missing
        facts["nvml"] = f"unavailable ({type(exc).__name__})"
    return facts


@contextlib.contextmanager
def torch_settings(threads: int | None) -> Iterator[dict[str, Any]]:
    """``torch.inference_mode`` and the thread count for the timed region, restored after.

    Yields the facts to record (thread counts, torch version); empty when the run has not
    imported torch.
    """
    torch = _torch()
    if torch is None:
        yield {}
        return
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    facts = {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }
    try:
        with torch.inference_mode():
            yield facts
    finally:
        torch.set_num_threads(before)


class PeakMemory:
    """Peak memory of the timed region: RSS high-water mark on CPU, allocator peak on CUDA.

    On Linux the RSS peak is reset before the region (``/proc/self/clear_refs``, value 5)
    and read from ``VmHWM`` after it, so earlier work does not inflate it; elsewhere the
    process's lifetime peak (``getrusage``) is reported and said so.
    """

    def __init__(self, device: Device) -> None:
        self.device = device
        self.method = ""

    def __enter__(self) -> PeakMemory:
        if self.device.kind == "cuda":
            torch = _torch()
            assert torch is not None
            torch.cuda.reset_peak_memory_stats(self.device.index or 0)
            self.method = "torch.cuda.max_memory_allocated"
        elif _reset_rss_peak():
            self.method = "VmHWM after reset (/proc/self/clear_refs)"
        else:
            self.method = "getrusage ru_maxrss (process lifetime peak)"
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def peak_mb(self) -> float | None:
        if self.device.kind == "remote":
            return None
        if self.device.kind == "cuda":
            torch = _torch()
            assert torch is not None
            return float(torch.cuda.max_memory_allocated(self.device.index or 0)) / 2**20
        hwm = _vm_hwm_kb()
        if hwm is not None and self.method.startswith("VmHWM"):
            return hwm / 1024.0
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
        return float(kb) / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)


def _reset_rss_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return _vm_hwm_kb() is not None
    except OSError:
        return False


def _vm_hwm_kb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None
