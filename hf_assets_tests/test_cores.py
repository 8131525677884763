"""The cores this process may use: its affinity, capped by a container's CPU quota."""

import os

from hf_assets.cores import cgroup_quota, usable_cores


def test_usable_cores_follow_the_affinity_and_a_cgroup_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    assert usable_cores(tmp_path / "absent") == affinity
    cpu_max.write_text("max 100000\n")
    assert cgroup_quota(cpu_max) is None and usable_cores(cpu_max) == affinity
    cpu_max.write_text("150000 100000\n")  # 1.5 cores: rounded up
    assert cgroup_quota(cpu_max) == 2 and usable_cores(cpu_max) == min(affinity, 2)
    cpu_max.write_text("50000 100000\n")
    assert usable_cores(cpu_max) == 1
