"""SimpleTuner's per-backend draw keys at the trainer's door: probability, repeats, start/end epoch and step,
ignore_epochs and datasets prepared but not trained on, read from a real config into MultiBackendSampler."""

from collections import Counter

from hf_assets.config import parse_config
from hf_assets.training.sampler import BucketBatchSampler, MultiBackendSampler


def backends(tmp_path, *settings: dict):
    entries = [{"id": f"b{k}", "type": "local", "instance_data_dir": f"d{k}", **s} for k, s in enumerate(settings)]
    return parse_config(entries, tmp_path / "dataloader.json").backends


def samplers(*counts: int):
    return [BucketBatchSampler([(64, 64)] * n, batch_size=2, buckets=["1.0"] * n, seed=k) for k, n in enumerate(counts)]


def drawn(multi: MultiBackendSampler, epoch: int) -> list[int]:
    multi.set_epoch(epoch)
    return [batch[0][0] for batch in multi]


def test_start_and_end_epoch_gate_a_backend_by_simpletuner_epoch_numbers(tmp_path):
    config = backends(tmp_path, {}, {"start_epoch": 2, "end_epoch": 3})
    multi = MultiBackendSampler.from_backends(samplers(8, 8), config)
    assert set(drawn(multi, 0)) == {0} and len(multi) == 4  # set_epoch(0) is SimpleTuner's epoch 1
    assert Counter(drawn(multi, 1)) == {0: 4, 1: 4} and len(multi) == 8
    assert set(drawn(multi, 3)) == {0}


def test_start_and_end_step_switch_backends_at_the_optimizer_step(tmp_path):
    # SimpleTuner's curriculum example: the low-res set until step 3, the high-res set from step 3 on
    config = backends(tmp_path, {"end_step": 3}, {"start_step": 3})
    multi = MultiBackendSampler.from_backends(samplers(40, 40), config, gradient_accumulation_steps=2)
    order = drawn(multi, 0)
    steps = [i // 2 for i in range(len(order))]
    assert all(step <= 3 for b, step in zip(order, steps) if b == 0)
    assert all(step >= 3 for b, step in zip(order, steps) if b == 1)
    assert {b for b, step in zip(order, steps) if step < 3} == {0} and {b for b, s in zip(order, steps) if s > 3} == {1}
    assert len(order) < len(multi)  # the low-res set stopped early
    multi.set_step(10)  # resuming past the switch: only the high-res set is drawn
    assert set(drawn(multi, 1)) == {1} and multi.step == 10 + 20 // 2


def test_a_backend_with_ignore_epochs_does_not_hold_up_the_end_of_an_epoch(tmp_path):
    config = backends(tmp_path, {"ignore_epochs": True}, {"repeats": 1})
    multi = MultiBackendSampler.from_backends(samplers(400, 10), config)
    counts = Counter(drawn(multi, 0))
    assert counts[1] == 2 * 5  # the held backend is spent once per repeat...
    assert 0 < counts[0] < 200  # ...and the epoch ends then, with the ignored backend's batches left over
    alone = MultiBackendSampler.from_backends(samplers(12), backends(tmp_path, {"ignore_epochs": True}))
    assert Counter(drawn(alone, 0)) == {0: 6}  # with every backend ignoring epochs, they all run to the end


def test_probability_repeats_and_eval_datasets_reach_the_door(tmp_path):
    config = backends(tmp_path, {"probability": 0.25, "repeats": 2}, {"dataset_type": "eval"}, {"probability": 0.75})
    multi = MultiBackendSampler.from_backends(samplers(8, 8, 8), config)
    assert multi.probabilities == [0.25, 0.0, 0.75] and multi.repeats == [2, 0, 0]
    assert Counter(drawn(multi, 0)) == {0: 12, 2: 4}
