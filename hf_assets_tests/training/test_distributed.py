"""Real torch.distributed ranks (gloo, CPU) step together through an epoch of uneven buckets: nobody hangs."""

import datetime
import json
import multiprocessing

import pytest
import torch
import torch.distributed as dist

from hf_assets.training.sampler import BucketBatchSampler
from hf_assets_tests.training.test_sampler import UNEVEN_KEYS, UNEVEN_SIZES

POLICIES = ("repeat", "keep", "drop")


def one_rank(rank: int, world_size: int, folder: str) -> None:
    """Join the group; per policy, take rank and world_size from it, all_reduce once per batch, record what was seen."""
    dist.init_process_group(
        "gloo",
        init_method=f"file://{folder}/rendezvous",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=60),  # a rank left waiting fails the test instead of hanging it
    )
    try:
        results = {}
        for policy in POLICIES:
            sampler = BucketBatchSampler(UNEVEN_SIZES, 4, buckets=UNEVEN_KEYS, seed=3, short_buckets=policy)
            seen, steps = [], 0
            for epoch in range(2):
                sampler.set_epoch(epoch)
                for batch in sampler:
                    total = torch.tensor([float(len(batch))])
                    dist.all_reduce(total)  # the collective every training step makes
                    steps += 1
                    seen.append({"epoch": epoch, "batch": batch})
            dist.barrier()
            results[policy] = {"rank": sampler.rank, "world_size": sampler.world_size, "steps": steps, "seen": seen}
        with open(f"{folder}/rank{rank}.json", "w") as f:
            json.dump(results, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # three spawned processes importing torch: about a minute on a busy 2-core machine
def test_three_gloo_ranks_take_their_rank_from_the_group_and_step_together(tmp_path):
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=one_rank, args=(r, 3, str(tmp_path))) for r in range(3)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=240)
    for p in processes:
        if p.is_alive():  # stuck: end it and fail below
            p.kill()
    assert [p.exitcode for p in processes] == [0, 0, 0]
    per_rank = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(3)]
    for policy in POLICIES:
        check_policy([ranks[policy] for ranks in per_rank], policy)


def check_policy(results: list[dict], policy: str) -> None:
    assert [(r["rank"], r["world_size"]) for r in results] == [(0, 3), (1, 3), (2, 3)]
    assert len({r["steps"] for r in results}) == 1 and results[0]["steps"] > 0
    for epoch in range(2):
        owned = [{i for s in r["seen"] if s["epoch"] == epoch for i in s["batch"]} for r in results]
        if policy == "drop":
            assert not (owned[0] & owned[1] or owned[0] & owned[2] or owned[1] & owned[2])
        else:
            assert set().union(*owned) == set(range(len(UNEVEN_SIZES)))
    for r in results:
        assert all(len({tuple(UNEVEN_SIZES[i]) for i in s["batch"]}) == 1 for s in r["seen"])
