"""BC on datasets that LeRobot's own writer recorded (``write_lerobot_dataset``: no Cadence metadata, no full
state): the observation features chosen by config, normalization from the dataset's own statistics, and one clear
error for each dataset that does not fit the env."""

import json
import shutil

import pyarrow.parquet as pq
import pytest
import torch

from cadence.datasets import ACTION, OBS, STATE, WindowDataset, load_demonstrations
from cadence.datasets.format import data_files
from cadence.envs import make_env

PENDULUM = "InvertedPendulum-v5"  # observation [cart x, pole angle, their velocities], 25 steps per second


@pytest.fixture(scope="module")
def recording(write_lerobot_dataset):
    """Two LQR episodes of InvertedPendulum-v5: ``observation.state`` (4,), ``action`` (1,), reward and done."""
    return write_lerobot_dataset(PENDULUM)


@pytest.fixture(scope="module")
def split_recording(write_lerobot_dataset):
    """The same task with its observation in two features, declared velocity first, and a full state."""
    return write_lerobot_dataset(PENDULUM, observe={"observation.velocity": slice(2, 4),
                                                    "observation.position": slice(0, 2), STATE: slice(None)})


def load(root, env_id=PENDULUM, keys=None):
    env = make_env(env_id)
    try:
        return load_demonstrations(root, env, keys)
    finally:
        env.close()


def column(root, key) -> torch.Tensor:
    """``key`` of every frame, read straight from the parquet file (N, D) (LeRobot stores a (1,) feature as a
    scalar)."""
    values = torch.tensor(pq.read_table(data_files(root)[0], columns=[key])[key].to_pylist())
    return values.reshape(len(values), -1)


def test_a_lerobot_dataset_trains_on_its_observation_state_with_its_own_statistics(recording):
    demos = load(recording)
    assert demos.observation_keys == [OBS] and demos.fps == 25 and demos.reference_returns is None
    torch.testing.assert_close(demos.data.observations, column(recording, OBS))
    torch.testing.assert_close(demos.data.actions, column(recording, ACTION))
    stats = json.loads((recording / "meta" / "stats.json").read_text())
    for part, key in (("observation", OBS), ("action", ACTION)):
        for s in ("mean", "std"):
            torch.testing.assert_close(demos.stats[part][s], torch.tensor(stats[key][s], dtype=torch.float32))


def test_statistics_are_computed_from_the_frames_when_stats_json_is_missing(recording, tmp_path):
    copy = shutil.copytree(recording, tmp_path / "ds")
    (copy / "meta" / "stats.json").unlink()
    demos, own = load(copy), load(recording)
    for part in ("observation", "action"):
        for s in ("mean", "std"):
            torch.testing.assert_close(demos.stats[part][s], own.stats[part][s], rtol=1e-4, atol=1e-7)


def test_the_default_observation_is_every_observation_feature_but_the_full_state_by_name(split_recording):
    demos = load(split_recording)
    assert demos.observation_keys == ["observation.position", "observation.velocity"]
    full = column(split_recording, STATE)  # [position, velocity]: the env's own order
    torch.testing.assert_close(demos.data.observations, full)
    torch.testing.assert_close(demos.stats["observation"]["std"], full.std(0, correction=0), rtol=1e-4, atol=1e-7)


def test_observation_keys_are_concatenated_in_the_order_given(split_recording):
    demos = load(split_recording, keys=["observation.velocity", "observation.position"])
    assert demos.observation_keys == ["observation.velocity", "observation.position"]
    torch.testing.assert_close(demos.data.observations, column(split_recording, STATE)[:, [2, 3, 0, 1]])
    assert load(split_recording, keys=[STATE]).observation_keys == [STATE]  # the full state, when asked for


def test_an_observation_key_the_dataset_lacks_lists_the_keys_it_has(recording):
    with pytest.raises(ValueError, match=r"has no feature observation\.nope; its observation features are "
                                         r"\['observation\.state'\].*algo\.observation_keys"):  # fmt: skip
        load(recording, keys=["observation.nope"])


def test_a_camera_over_the_cache_cap_is_refused_before_any_frame_is_decoded(recording, tmp_path):
    """The camera feature is declared in info.json only (no video exists): the cap refuses it before decoding."""
    copy = shutil.copytree(recording, tmp_path / "ds")
    info = json.loads((copy / "meta" / "info.json").read_text())
    info["features"]["observation.images.top"] = {"dtype": "video", "shape": [64, 64, 3],
                                                  "names": ["height", "width", "channels"]}  # fmt: skip
    (copy / "meta" / "info.json").write_text(json.dumps(info))
    env = make_env(PENDULUM)
    with pytest.raises(ValueError, match=r"decoding \['observation\.images\.top'\] of .* takes .* GiB .* over "
                                         r"algo\.image_cache_gib=1e-09: lower the resolution"):  # fmt: skip
        load_demonstrations(copy, env, image_cache_gib=1e-9)
    env.close()
    assert load(copy, keys=[OBS]).observation_keys == [OBS]  # the state alone trains


def test_a_dataset_without_actions_is_refused(write_lerobot_dataset):
    root = write_lerobot_dataset(PENDULUM, action=False, episodes=1, steps=10)
    with pytest.raises(ValueError, match=r"has no action feature, and behavior cloning imitates recorded actions"):
        load(root)


def test_a_frame_rate_other_than_the_envs_control_rate_is_refused_naming_both(write_lerobot_dataset):
    root = write_lerobot_dataset(PENDULUM, fps=30, episodes=1, steps=10)
    with pytest.raises(ValueError, match=r"is recorded at 30 fps but InvertedPendulum-v5 steps every 0\.04 s "
                                         r"\(25 steps per second\)"):  # fmt: skip
        load(root)


def test_observation_and_action_shapes_that_are_not_the_envs_are_refused_naming_both(recording):
    with pytest.raises(ValueError, match=r"observation observation\.state \(4,\) has 4 dims but "
                                         r"Cadence/InvertedPendulum-P-v5 observes \(2,\)"):  # fmt: skip
        load(recording, "Cadence/InvertedPendulum-P-v5")
    with pytest.raises(ValueError, match=r"action has shape \(1,\) but Swimmer-v5 takes actions of shape \(2,\)"):
        load(recording, "Swimmer-v5")  # also 25 steps per second


def test_a_cadence_dataset_is_rebuilt_from_its_full_state_for_another_variant(short_dataset):
    """Recorded on InvertedPendulum-P (positions): the velocities variant reads them from the full state."""
    demos = load(short_dataset, "Cadence/InvertedPendulum-V-v5")
    full = WindowDataset(short_dataset, keys=(STATE,))
    assert demos.observation_keys == [STATE] and demos.reference_returns is not None
    torch.testing.assert_close(demos.data.observations, full.data[STATE][:, 2:4])
    torch.testing.assert_close(demos.stats["observation"]["mean"], full.stats[STATE]["mean"][2:4])
    assert load(short_dataset, "Cadence/InvertedPendulum-P-v5").observation_keys == [OBS]
