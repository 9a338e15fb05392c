"""Demonstration datasets in LeRobot v3 format: collection (:func:`collect_dataset`), fast window
reading (:class:`WindowDataset`) and the in-memory demonstrations BC trains on (:func:`load_demonstrations`).
Everything is local: importing this package sets ``HF_HUB_OFFLINE=1`` (unless set) so a LeRobot load never
turns into a Hub download.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .collect import (collect_dataset, episode_rng, measure_reference, reference_returns,  # noqa: E402
                      reference_summary, rollout)  # fmt: skip
from .format import ACTION, DONE, OBS, REWARD, STATE, check_dataset  # noqa: E402
from .demonstrations import (Batch, Demonstrations, EpisodeStreams, LoadedDemonstrations,  # noqa: E402
                             camera_keys, load_demonstrations, observation_keys)  # fmt: skip
from .windows import WindowDataset, window_indices  # noqa: E402

__all__ = ["ACTION", "DONE", "OBS", "REWARD", "STATE", "Batch", "Demonstrations", "EpisodeStreams", "LoadedDemonstrations",
           "WindowDataset", "camera_keys", "check_dataset", "collect_dataset", "episode_rng", "load_demonstrations",
           "measure_reference", "observation_keys", "reference_returns", "reference_summary", "rollout", "window_indices"]
