"""The fast window reader gives LeRobotDataset's windows, episodes and statistics."""

import numpy as np
import pytest
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from cadence.datasets import ACTION, OBS, STATE, WindowDataset, check_dataset

KEYS = (OBS, STATE, ACTION)


@pytest.mark.parametrize("offsets", [range(32), range(-7, 1), range(-3, 5)])
def test_windows_equal_lerobots_at_starts_middles_and_ends(short_dataset, offsets):
    ours = WindowDataset(short_dataset, keys=KEYS, offsets=offsets)
    fps = ours.fps
    ref = LeRobotDataset("cadence/short", root=short_dataset, video_backend="pyav",
                         delta_timestamps={k: [o / fps for o in offsets] for k in KEYS})  # fmt: skip
    lengths = (ours.ep_to - ours.ep_from).tolist()
    assert len(set(lengths)) > 1  # episodes of different lengths, so boundaries are exercised
    anchors = sorted({int(a) for lo, hi in zip(ours.ep_from, ours.ep_to) for a in (lo, lo + 1, (lo + hi) // 2, hi - 2, hi - 1)})
    for i in anchors:
        mine, theirs = ours[i], ref[i]
        for k in KEYS:
            # a (1,) feature (the pendulum's action) keeps its feature axis here, LeRobot drops it
            torch.testing.assert_close(mine[k], theirs[k].reshape(mine[k].shape), rtol=0, atol=0, msg=f"{k} at {i}")
            torch.testing.assert_close(mine[f"{k}_is_pad"], theirs[f"{k}_is_pad"], msg=f"{k}_is_pad at {i}")


def test_sampled_windows_stay_in_their_episode(short_dataset):
    ds = WindowDataset(short_dataset, keys=KEYS, offsets=range(16))
    batch = ds.sample(256, torch.Generator().manual_seed(0))
    assert batch[OBS].shape == (256, 16, 2) and batch[f"{OBS}_is_pad"].shape == (256, 16)
    for obs, state, pad in zip(batch[OBS], batch[STATE], batch[f"{OBS}_is_pad"]):
        valid = int((~pad).sum())
        assert not pad[:valid].any() and pad[valid:].all()  # a valid prefix, then padding
        assert (obs[valid:] == obs[valid - 1]).all()  # padding repeats the episode's last frame
        torch.testing.assert_close(obs, state[:, :2])  # -P: positions of the full state


def test_episodes_tile_the_frames(short_dataset):
    ds = WindowDataset(short_dataset, keys=KEYS)
    episodes = [ds.episode(e) for e in range(ds.num_episodes)]
    torch.testing.assert_close(torch.cat([ep[ACTION] for ep in episodes]), ds.data[ACTION])
    assert ds.metadata["episode_lengths"] == [len(ep[ACTION]) for ep in episodes]
    with pytest.raises(IndexError, match="episode 6"):
        ds.episode(6)


def test_stats_describe_the_data(short_dataset):
    ds = WindowDataset(short_dataset, keys=KEYS)
    for k in KEYS:
        x = ds.data[k].double()
        torch.testing.assert_close(ds.stats[k]["mean"].double(), x.mean(0), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ds.stats[k]["min"], ds.data[k].min(0).values)
        torch.testing.assert_close(ds.stats[k]["max"], ds.data[k].max(0).values)


def test_missing_folder_and_missing_info_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nope'}.*cadence.scripts.collect"):
        WindowDataset(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="info.json is missing"):
        check_dataset(tmp_path)


def test_unfinalized_dataset_is_reported_not_downloaded(tmp_path):
    root = tmp_path / "unfinalized"
    ds = LeRobotDataset.create(repo_id="t/unfinalized", root=root, fps=10, use_videos=False, video_backend="pyav",
                               features={"action": {"dtype": "float32", "shape": (1,), "names": None}})  # fmt: skip
    for _ in range(2):
        for _ in range(3):
            ds.add_frame({"action": np.zeros(1, np.float32), "task": "t"})
        ds.save_episode()
    # no finalize(): the episode metadata is still buffered, as after a crash
    with pytest.raises(ValueError, match="interrupted before it was finalized"):
        check_dataset(root)
    ds.finalize()
    assert check_dataset(root)["total_episodes"] == 2
