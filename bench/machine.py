"""What every benchmark prints about the machine it ran on, so a noisy run can be told apart:
cores, platform, versions, and the load average before and after the run."""

from __future__ import annotations

import os
import platform
from contextlib import contextmanager


def describe() -> dict:
    import torch

    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


@contextmanager
def recorded(into: dict):
    """Fill `into["machine"]` with describe() and the 1-minute load average before/after the block."""
    before = os.getloadavg()[0]
    try:
        yield
    finally:
        into["machine"] = {**describe(), "load_average_1min_before_after": [round(before, 2),
                                                                             round(os.getloadavg()[0], 2)]}
