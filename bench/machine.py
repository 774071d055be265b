"""What a benchmark report says about the machine and the libraries it ran with."""

from __future__ import annotations

import platform
from importlib import metadata


def versions(*dists: str) -> dict[str, str]:
    """Python's version and each distribution's ("missing" when it is not installed)."""
    out = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
