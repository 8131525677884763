"""Decode threads by core count: the cores this process may use (affinity, a container's quota), shared among the
GPUs whose steps run at once on the machine."""

import os

import pytest

from hf_assets.encode.cores import cgroup_quota, default_decode_workers, prefetch_depth, usable_cores


@pytest.mark.parametrize(
    ("cores", "devices", "workers"),
    [(16, 1, 15), (16, 8, 1), (128, 8, 15), (2, 1, 1), (1, 1, 1), (12, 0, 11), (3, 8, 1)],
)
def test_each_gpu_gets_its_share_of_the_cores_less_the_thread_driving_it(cores, devices, workers):
    assert default_decode_workers(cores, devices) == workers


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


def test_prefetch_keeps_two_batches_and_every_worker_busy():
    assert prefetch_depth(32, 15) == 79
    assert prefetch_depth(1, 0) == 2
