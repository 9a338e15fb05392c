"""The on-disk form of a Cadence demonstration dataset: LeRobot v3 plus ``meta/cadence.json``.

LeRobot features (one row per control step t):

============================== ======= =====================================================
``observation.state``          float32 (O,)  the task observation o_t (what the policy sees)
``observation.environment_state`` float32 (D,) the full state s_t (what the expert saw)
``action``                     float32 (A,)  the expert's clean action a_t = π*(s_t) (the label)
``next.reward``                float32       reward of the executed (possibly noisy) action
``next.done``                  bool          terminated or truncated after this step
============================== ======= =====================================================

``meta/cadence.json`` (Cadence's own, written atomically when a collection completes) records the env,
expert, noise, seed, per-episode returns, the clean-expert and random-policy reference returns used for
normalized scores. ``meta/cadence_progress.json`` is the resume point of a collection in progress.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OBS, STATE, ACTION, REWARD, DONE = ("observation.state", "observation.environment_state", "action", "next.reward",
                                    "next.done")  # fmt: skip
METADATA_FILE = "meta/cadence.json"
PROGRESS_FILE = "meta/cadence_progress.json"
COLLECT_HINT = "write one with `python -m cadence.scripts.collect env=NAME out={root}`"


def features(obs_dim: int, state_dim: int, action_dim: int) -> dict[str, dict]:
    """LeRobot feature spec of a demonstration dataset (module docstring)."""

    def vector(n: int, prefix: str) -> dict:
        return {"dtype": "float32", "shape": (n,), "names": [f"{prefix}{i}" for i in range(n)]}

    return {OBS: vector(obs_dim, "o"), STATE: vector(state_dim, "s"), ACTION: vector(action_dim, "a"),
            REWARD: {"dtype": "float32", "shape": (1,), "names": None},
            DONE: {"dtype": "bool", "shape": (1,), "names": None}}  # fmt: skip


def write_json(path: Path, data: dict) -> None:
    """Writes ``data`` to ``path`` atomically (temp file + os.replace)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def episode_files(root: Path) -> list[Path]:
    return sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))


def data_files(root: Path) -> list[Path]:
    return sorted((root / "data").glob("chunk-*/file-*.parquet"))


def check_dataset(root: str | os.PathLike) -> dict:
    """Validates a finalized local LeRobot dataset before anything tries to load it; returns its info.json.

    A missing folder or ``meta/info.json`` raises FileNotFoundError; a dataset whose recording was not
    finalized (episodes or data parquet missing or without footer, or counts that disagree) raises
    ValueError. Both name the path and the fix, instead of LeRobot's fallback to a Hub download.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset at {root}: the folder does not exist; {COLLECT_HINT.format(root=root)}")
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{root} is not a LeRobot dataset: {info_path} is missing; "
                                f"{COLLECT_HINT.format(root=root)}")  # fmt: skip
    info = read_json(info_path)
    fix = (f"the recording of {root} was interrupted before it was finalized; finish it by running the same "
           f"collect command again (it resumes), or delete the folder")  # fmt: skip
    try:
        n_episodes = sum(pq.read_metadata(f).num_rows for f in episode_files(root))
        n_frames = sum(pq.read_metadata(f).num_rows for f in data_files(root))
    except (OSError, pa.ArrowInvalid) as e:
        raise ValueError(f"{fix} ({e})") from e
    if n_episodes == 0 or (n_episodes, n_frames) != (info["total_episodes"], info["total_frames"]):
        raise ValueError(f"{fix}: info.json lists {info['total_episodes']} episodes and {info['total_frames']} "
                         f"frames, the parquet files hold {n_episodes} and {n_frames}")  # fmt: skip
    return info
