"""Facts about the machine a run happened on, for the report and the attestation.

Only facts, never the environment's variables (they hold secrets). Heavy packages are
reported by version from their metadata, without importing them; GPU facts come from
torch only if the run already imported it.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: The host's own packages and the common stack; check families add theirs with
#: ``CheckDefinition.packages`` (see :meth:`llmguard_ops.registry.Registry.packages`).
REPORTED_PACKAGES = (
    "llmguard-ops",
    "pluggy",
    "pydantic",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "transformers",
    "cryptography",
    "hypothesis",
    "onnxruntime",
    "sentence-transformers",
)


def package_versions(names: tuple[str, ...] = REPORTED_PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit(path: Path) -> dict[str, Any] | None:
    """Commit and dirtiness of the git work tree holding ``path``, if any."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def gpu_info() -> list[dict[str, Any]]:
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    try:
        if not torch.cuda.is_available():
            return []
        gpus = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append(
                {
                    "index": i,
                    "name": props.name,
                    "memory_mb": props.total_memory // 2**20,
                    "capability": f"{props.major}.{props.minor}",
                    "cuda": torch.version.cuda,
                }
            )
        return gpus
    except Exception:
        return []


def gpu_driver() -> str | None:
    """The NVIDIA driver version, asked of ``nvidia-smi`` (only called when a GPU is in use)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def cpu_model() -> str | None:
    """The CPU's model name (``platform.processor()`` is often empty on Linux)."""
    name = platform.processor()
    if name and name != platform.machine():
        return name
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name or None


def collect(suite_dir: Path, packages: tuple[str, ...] = REPORTED_PACKAGES) -> dict[str, Any]:
    """The facts of this machine (``packages``: the distributions whose versions to record)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "processor": cpu_model(),
        "packages": package_versions(packages),
        "gpu": (gpus := gpu_info()),
        "gpu_driver": gpu_driver() if gpus else None,
        "git": git_commit(suite_dir),
    }
