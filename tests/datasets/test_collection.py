"""Collection: the dataset holds exactly what the expert saw and did; parts, resumption and references (the
random policy, or the task's floor policy where it registers one)."""

import numpy as np
import pytest
import torch

from cadence.datasets import (ACTION, DONE, OBS, REWARD, STATE, WindowDataset, collect_dataset, episode_rng,
                              reference_returns, rollout)  # fmt: skip
from cadence.datasets.collect import RANDOM
from cadence.envs import make_env, make_expert, make_floor, observation_indices


class Recorder:
    """The LQR expert, logging every full state it was given and every action it returned."""

    name = "lqr"

    def __init__(self):
        self.expert = make_expert("lqr", make_env("invertedpendulum"))
        self.seen, self.did = [], []

    def __call__(self, full_state):
        action = self.expert(full_state)
        self.seen.append(full_state)
        self.did.append(action)
        return action


def test_round_trip_frames_and_actions_are_what_the_expert_produced(tmp_path):
    expert = Recorder()
    meta = collect_dataset("invertedpendulum_p", expert, episodes=5, root=tmp_path / "ds", noise=0.5, seed=0,
                           part_episodes=2, reference_episodes=1)  # fmt: skip
    n = meta["frames"]  # the expert's log also holds the reference episodes run after the recording
    ds = WindowDataset(tmp_path / "ds", keys=(OBS, STATE, ACTION, REWARD, DONE))
    assert ds.num_episodes == meta["episodes"] == 5 and len(ds) == n == 5000
    torch.testing.assert_close(ds.data[STATE], torch.tensor(np.array(expert.seen[:n]), dtype=torch.float32))
    torch.testing.assert_close(ds.data[ACTION], torch.tensor(np.array(expert.did[:n]), dtype=torch.float32))
    idx = observation_indices("Cadence/InvertedPendulum-P-v5")
    torch.testing.assert_close(ds.data[OBS], ds.data[STATE][:, idx])
    assert ds.data[DONE].sum() == 5 and ds.data[DONE][ds.ep_to - 1].all()
    assert meta["episode_returns"] == [1000.0] * 5 == [float(ds.episode(e)[REWARD].sum()) for e in range(5)]
    assert meta["reference"]["expert"] == 1000.0 > meta["reference"]["random"]
    assert meta["expert"] == "lqr" and meta["noise"] == 0.5 and meta["env"]["id"] == "Cadence/InvertedPendulum-P-v5"
    assert ds.fps == 25


def test_parts_and_extension_write_the_same_frames_as_one_go(tmp_path):
    kw = dict(noise=0.2, seed=3, reference_episodes=1)
    collect_dataset("reacher", "reacher", 5, tmp_path / "one", part_episodes=5, **kw)
    collect_dataset("reacher", "reacher", 2, tmp_path / "parts", part_episodes=1, **kw)
    collect_dataset("reacher", "reacher", 5, tmp_path / "parts", part_episodes=2, **kw)  # extends 2 -> 5
    one, parts = (WindowDataset(tmp_path / d, keys=(OBS, ACTION)) for d in ("one", "parts"))
    for k in (OBS, ACTION):
        torch.testing.assert_close(one.data[k], parts.data[k], rtol=0, atol=0)
    assert one.metadata["episode_returns"] == parts.metadata["episode_returns"]


def test_other_settings_on_an_existing_collection_are_refused(tmp_path):
    collect_dataset("reacher", "reacher", 1, tmp_path / "ds", noise=0.1, reference_episodes=1)
    with pytest.raises(ValueError, match="noise"):
        collect_dataset("reacher", "reacher", 2, tmp_path / "ds", noise=0.3)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="not a collection by cadence"):
        collect_dataset("reacher", "reacher", 1, tmp_path / "foreign")


def test_a_task_with_a_floor_policy_records_its_returns_as_the_random_reference(tmp_path):
    env = {"name": "tracking", "id": "Cadence/DelayedTracking-v0", "kwargs": {"lag_steps": 1, "track_steps": 20}}
    meta = collect_dataset(env, "delayed_tracker", 1, tmp_path / "ds", reference_episodes=2)
    floor = make_floor(make_env(env))
    expected = [rollout(make_env(env), floor, episode_rng(0, RANDOM, e)[0]).ret for e in range(2)]
    assert meta["floor_policy"] == "TrackingFloor" and meta["random_returns"] == expected
    assert meta["reference"]["random"] == np.mean(expected) < meta["reference"]["expert"]
    pendulum = make_env("invertedpendulum")
    assert reference_returns(pendulum, make_expert("lqr", pendulum), 1, 0)["floor_policy"] == "random"


class Crashing:
    """The reacher expert, raising at its ``at``-th call: a collection interrupted mid-part."""

    name = "reacher"

    def __init__(self, at: int):
        self.expert, self.calls, self.at = make_expert("reacher", make_env("reacher_pixels")), 0, at

    def __call__(self, full_state):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.expert(full_state)


def test_render_records_the_frames_the_expert_acted_on_and_an_interrupted_collection_resumes(tmp_path):
    from cadence.datasets import load_demonstrations
    from cadence.datasets.collect import MAIN
    from cadence.datasets.format import committed_sha256

    kw = dict(noise=0.1, seed=0, reference_episodes=1, part_episodes=1)
    meta = collect_dataset("reacher_pixels", "reacher", 2, tmp_path / "one", **kw)
    assert meta["env"]["camera"]["key"] == "top"
    with pytest.raises(KeyboardInterrupt):
        collect_dataset("reacher_pixels", Crashing(at=75), 2, tmp_path / "resumed", **kw)  # inside episode 1
    collect_dataset("reacher_pixels", "reacher", 2, tmp_path / "resumed", **kw)
    env = make_env("reacher_pixels")
    one, resumed = (load_demonstrations(tmp_path / d, env) for d in ("one", "resumed"))
    assert one.image_keys == ["observation.images.top"] and one.data.images.shape == (100, 3, 64, 64)
    torch.testing.assert_close(one.data.images, resumed.data.images, rtol=0, atol=0)
    assert any(f.startswith("videos/") for f in committed_sha256(tmp_path / "resumed"))
    _, info = env.reset(seed=episode_rng(0, MAIN, 1)[0])  # the first frame of episode 1, rendered afresh
    rendered = torch.from_numpy(info["observation.images.top"]).permute(2, 0, 1).float()
    # lossless H.264 4:4:4 (VideoEncoding): the frame as rendered up to the RGB <-> YUV rounding, the 2-pixel target
    # included (LeRobot's default AV1 4:2:0 at crf 30 is off by over 100 grey levels there and erases the target)
    assert (one.data.images[50].float() - rendered).abs().max() <= 3
    assert meta["video"] == {"codec": "h264", "pix_fmt": "yuv444p", "crf": 0}
    assert (one.data.images[0].float() - rendered).abs().mean() > (one.data.images[50].float() - rendered).abs().mean()
    state_only = collect_dataset("reacher_pixels", "reacher", 1, tmp_path / "state", render=False, **kw)
    assert state_only["env"]["camera"] is None and not (tmp_path / "state" / "videos").exists()


def test_reach_pixels_records_its_masked_state_beside_the_full_one_and_the_frames(tmp_path):
    """A task whose observation is a mask of its full state (``reach_pixels``: no cue, no velocities) records both:
    ``observation.state`` what the policy sees, ``observation.environment_state`` what the expert read."""
    from cadence.datasets import load_demonstrations
    from cadence.datasets.format import read_info

    meta = collect_dataset("reach_pixels", "cue_reacher", 1, tmp_path / "rp", noise=0.1, seed=0, reference_episodes=1)
    features = read_info(tmp_path / "rp")["features"]
    assert features[OBS]["shape"] == [9] and features[STATE]["shape"] == [11] and meta["episode_successes"] == [True]
    demos = load_demonstrations(tmp_path / "rp", make_env("reach_pixels"))
    assert demos.image_keys == ["observation.images.top"] and demos.data.images.shape == (50, 3, 64, 64)


def test_the_frames_encoding_is_a_setting_and_a_wrong_key_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"video has unknown key\(s\) \['quality'\]; its keys are codec, pix_fmt"):
        collect_dataset("reach_pixels", "cue_reacher", 1, tmp_path / "rp", video={"quality": 3}, reference_episodes=1)
    collect_dataset("reach_pixels", "cue_reacher", 1, tmp_path / "rp", video={"crf": 10}, reference_episodes=1)
    with pytest.raises(ValueError, match="other settings.*'video'"):
        collect_dataset("reach_pixels", "cue_reacher", 2, tmp_path / "rp", reference_episodes=1)
