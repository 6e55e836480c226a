"""Wall-clock timing that includes the work a call queued on an accelerator."""
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
