"""SimpleTuner's video settings: frames trained on, the VAE's frame rule, and "WxH@F" buckets."""

import numpy as np
import pyarrow as pa

from hf_assets.config.schema import VideoConfig
from hf_assets.data.frame_selection import (
    assign_frames,
    latent_frames,
    selected_frames,
    too_many_frames_mask,
    trim_to_rule,
)


def test_num_frames_takes_the_first_frames_and_shorter_clips_keep_all_of_theirs():
    assert selected_frames([200, 125, 110], VideoConfig(num_frames=125, min_frames=100)).tolist() == [125, 125, 110]
    assert selected_frames([200, 7], VideoConfig()).tolist() == [200, 7]


def test_resolution_frames_rounds_down_to_the_frame_interval_but_never_to_zero():
    cfg = VideoConfig(bucket_strategy="resolution_frames", frame_interval=25)
    assert selected_frames([249, 100, 24], cfg).tolist() == [225, 100, 24]
    assert selected_frames([249], VideoConfig(frame_interval=25)).tolist() == [249]  # aspect_ratio ignores it


def test_vae_frame_rule_trims_to_the_nearest_accepted_count_below():
    assert trim_to_rule([119, 121, 128, 8, 1, 0], 8).tolist() == [113, 121, 121, 1, 1, 0]  # LTX: % 8 == 1
    assert trim_to_rule([81, 80, 17, 16, 5], 4).tolist() == [81, 77, 17, 13, 5]  # Wan: % 4 == 1
    assert latent_frames([81, 17, 1], 4).tolist() == [21, 5, 1]


def test_max_frames_marks_longer_clips():
    assert too_many_frames_mask([10, 250, 251], VideoConfig(max_frames=250)).tolist() == [False, False, True]
    assert not too_many_frames_mask([10**6], VideoConfig()).any()


def test_resolution_frames_buckets_are_named_width_by_height_at_frames():
    table = pa.table(
        {
            "bucket": ["1.78", "1.78", "0.75"],
            "target_width": [1280, 1280, 480],
            "target_height": [720, 720, 640],
            "num_frames": [130, 101, 80],
        }
    )
    out = assign_frames(table, VideoConfig(bucket_strategy="resolution_frames", frame_interval=25))
    assert out.column("bucket").to_pylist() == ["1280x720@125", "1280x720@100", "480x640@75"]
    assert out.column("frames").to_pylist() == [125, 100, 75]
    kept = assign_frames(table, VideoConfig(num_frames=100))
    assert kept.column("bucket").to_pylist() == ["1.78", "1.78", "0.75"]
    assert np.array_equal(kept.column("frames").to_numpy(), [100, 100, 80])
