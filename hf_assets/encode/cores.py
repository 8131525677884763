"""How many threads decode images for one encoding process: the cores it may use, shared among the devices that
encode at once on its machine."""

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota (a container's limit)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_quota(cpu_max)
    return max(1, min(cores, quota) if quota else cores)


def cgroup_quota(cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """Whole cores of a cgroup v2 CPU quota (rounded up), None when there is none or it cannot be read."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max" or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def default_decode_workers(cores: int, devices: int) -> int:
    """Decode threads for one process: its share of `cores` when `devices` processes (one per GPU) encode at once
    on the machine, less the one core its own thread needs to drive the device; at least 1."""
    share = cores // max(1, devices)
    return max(1, share - 1)


def prefetch_depth(batch_size: int, workers: int) -> int:
    """Images decoded ahead of the device: two batches, plus one in the hands of each worker, so that the next
    batch is ready while one is encoded and every worker always has an image to decode."""
    return 2 * max(1, batch_size) + max(0, workers)
