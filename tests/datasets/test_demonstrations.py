"""BC's in-memory demonstrations: random windows are the window reader's windows, and truncated-BPTT streams
walk whole episodes."""

import pytest
import torch

from cadence.datasets import ACTION, OBS, STATE, Demonstrations, EpisodeStreams, WindowDataset, load_demonstrations
from cadence.envs import make_env


def test_sample_windows_are_the_window_readers_windows(short_dataset):
    """BC trains on exactly the batches ``WindowDataset.sample`` gives for the same generator (one sampler)."""
    env = make_env("invertedpendulum_p")
    demos = load_demonstrations(short_dataset, env).data
    env.close()
    reader = WindowDataset(short_dataset, keys=(OBS, STATE, ACTION), offsets=range(24))
    obs, act, valid, *_ = demos.sample_windows(128, 24, torch.Generator().manual_seed(5))
    ref = reader.sample(128, torch.Generator().manual_seed(5))
    torch.testing.assert_close(obs, ref[OBS].float(), rtol=0, atol=0)
    torch.testing.assert_close(act, ref[ACTION].float(), rtol=0, atol=0)
    assert torch.equal(valid, ~ref[f"{OBS}_is_pad"]) and not valid.all()  # some windows cross an episode's end


def toy_demos(lengths=(30, 50, 20)) -> Demonstrations:
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(sum(lengths), 3, generator=g)
    ends = torch.tensor(lengths).cumsum(0)
    return Demonstrations(obs, obs[:, :1] * 0.3, ends - torch.tensor(lengths), ends)


def test_sample_windows_pad_past_the_episode_end():
    obs, act, valid, *_ = toy_demos().sample_windows(256, 40, torch.Generator().manual_seed(1))
    for o, v in zip(obs, valid):
        n_valid = int(v.sum())
        assert v[:n_valid].all() and not v[n_valid:].any()  # valid prefix, then padding
        assert (o[n_valid:] == o[n_valid - 1]).all()  # padding repeats the last frame


def test_streams_mark_resets_at_episode_boundaries():
    d = toy_demos()
    s = EpisodeStreams(d, 4, torch.Generator().manual_seed(2))
    seen = 0
    for _ in range(10):
        obs, _, _, resets, *_ = s.next(16)
        for b in range(4):
            # consecutive frames within a stream are consecutive rows unless a reset starts a new episode
            rows = [int(torch.nonzero((d.observations == obs[b, t]).all(1))[0]) for t in range(16)]
            for t in range(1, 16):
                assert resets[b, t] or rows[t] == rows[t - 1] + 1
            seen += int(resets[b].sum())
    assert seen > 0


def test_split_holds_out_the_last_episodes_whole():
    data = toy_demos()
    train, held_out = data.split(1)
    assert (train.ep_from.tolist(), train.ep_to.tolist(), held_out.ep_to.tolist()) == ([0, 30], [30, 80], [20])
    torch.testing.assert_close(held_out.observations, data.observations[80:])
    batch = held_out.episodes(torch.tensor([0]))
    assert batch.obs.shape[:2] == (1, 20) and batch.valid.all()
    with pytest.raises(ValueError, match="keep at least one on each side"):
        data.split(3)
