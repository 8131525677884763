"""Decode threads by core count: the cores this process may use (affinity, a container's quota), shared among the
GPUs whose steps run at once on the machine."""

import pytest

from hf_assets.encode.decode_workers import default_decode_workers, prefetch_depth


@pytest.mark.parametrize(
    ("cores", "devices", "workers"),
    [(16, 1, 15), (16, 8, 1), (128, 8, 15), (2, 1, 1), (1, 1, 1), (12, 0, 11), (3, 8, 1)],
)
def test_each_gpu_gets_its_share_of_the_cores_less_the_thread_driving_it(cores, devices, workers):
    assert default_decode_workers(cores, devices) == workers


def test_prefetch_keeps_two_batches_and_every_worker_busy():
    assert prefetch_depth(32, 15) == 79
    assert prefetch_depth(1, 0) == 2
