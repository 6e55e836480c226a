"""Wall-clock timing that includes the work a call queued on an accelerator."""
import os
import time

import torch


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, function):
    """``(seconds, result)`` of ``function()``, waiting for the device before and after."""
    synchronize(device)
    started = time.perf_counter()
    result = function()
    synchronize(device)
    return time.perf_counter() - started, result


def load_average():
    """The 1-minute load average, as text (other work on a shared machine slows every timing)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"
