"""The machine a computation ran on, as the records name it: what besides the library versions decides the rounding."""
import platform

import torch


def machine():
    """``{cpu, cpu_capability, threads}``: each can change the rounding, so a rerun gives the committed numbers bit
    for bit only on the same kind of CPU at the same thread count."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    except OSError:  # not Linux
        pass
    return {"cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}


def kind_of(computed_on):
    """The kind of CPU a ``machine()`` dict names (a study's blocking factor); ``"not recorded"`` for None."""
    return "not recorded" if not computed_on else f"{computed_on['cpu']} ({computed_on['cpu_capability']})"
