"""The on-disk form of a demonstration dataset: LeRobot v3, plus ``meta/cadence.json`` when Cadence wrote it.

Any local LeRobot v3 dataset with an ``action`` feature and ``observation.*`` vector (and camera) features
trains a policy (:func:`cadence.datasets.load_demonstrations`; docs/own_dataset.md); the rest is optional. What
``cadence-collect`` writes, one row per control step t:

============================== ======= =====================================================
``observation.state``          float32 (O,)  the task observation o_t (what the policy sees)
``observation.environment_state`` float32 (D,) the full state s_t (what the expert saw)
``action``                     float32 (A,)  the expert's clean action a_t = π*(s_t) (the label)
``next.reward``                float32       reward of the executed (possibly noisy) action
``next.done``                  bool          terminated or truncated after this step
``observation.images.KEY``     video   (H, W, 3) uint8 camera frame at t (``render``: the env's camera)
============================== ======= =====================================================

Image features (dtype ``image`` or ``video``, :data:`IMAGE_DTYPES`) are decoded by :mod:`cadence.datasets.images`.

``meta/cadence.json`` (Cadence's own, written atomically when a collection completes) records the env,
expert, noise, seed, per-episode returns, the clean-expert and random-policy reference returns used for
normalized scores. ``meta/cadence_progress.json`` is the resume point of a collection in progress, and the
record of its parquet files: their sha256 at the commit of the part that wrote them, which every load and every
resume verifies (:func:`verify_files`), so that changed bytes never train silently. A dataset that LeRobot wrote
itself has no such record; it is read without the check.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import write_text

OBS, STATE, ACTION, REWARD, DONE = ("observation.state", "observation.environment_state", "action", "next.reward",
                                    "next.done")  # fmt: skip
OBSERVATION_PREFIX = "observation."
"""LeRobot's prefix of every observation feature (``observation.state``, ``observation.images.top``, ...)."""
IMAGE_DTYPES = ("image", "video")
"""LeRobot's dtypes of camera features."""
METADATA_FILE = "meta/cadence.json"
PROGRESS_FILE = "meta/cadence_progress.json"
COLLECT_HINT = "write one with `python -m cadence.scripts.collect env=NAME out={root}`"


def features(obs_dim: int, state_dim: int, action_dim: int, cameras: dict[str, tuple[int, int]] | None = None
             ) -> dict[str, dict]:  # fmt: skip
    """LeRobot feature spec of a demonstration dataset (module docstring); ``cameras`` {feature: (H, W)} adds RGB
    video features."""

    def vector(n: int, prefix: str) -> dict:
        return {"dtype": "float32", "shape": (n,), "names": [f"{prefix}{i}" for i in range(n)]}

    videos = {key: {"dtype": "video", "shape": (h, w, 3), "names": ["height", "width", "channels"]}
              for key, (h, w) in (cameras or {}).items()}  # fmt: skip
    return {OBS: vector(obs_dim, "o"), STATE: vector(state_dim, "s"), ACTION: vector(action_dim, "a"),
            REWARD: {"dtype": "float32", "shape": (1,), "names": None},
            DONE: {"dtype": "bool", "shape": (1,), "names": None}, **videos}  # fmt: skip


def write_json(path: Path, data: dict) -> None:
    """Writes ``data`` to ``path`` atomically (:mod:`cadence.atomic`)."""
    write_text(path, json.dumps(data, indent=2))


def read_json(path: Path) -> dict:
    """``path`` parsed; an empty or cut-off file raises a ValueError naming it and the fix."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is empty or not valid JSON ({e}): it was cut off while being written; run the "
                         "collect command that wrote the dataset again (a cadence collection resumes and rewrites "
                         "it), or delete the folder and collect again") from e  # fmt: skip


def file_sha256(path: Path) -> str:
    """The hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_files(root: Path, sha256: dict[str, str]) -> None:
    """Refuse the dataset at ``root`` when a file it committed (``sha256``: path under ``root`` -> hex digest) is
    missing or its bytes changed, naming the file."""
    for name, recorded in sha256.items():
        path = root / name
        found = file_sha256(path) if path.is_file() else None
        if found != recorded:
            problem = "is missing" if found is None else (
                f"is corrupt: its bytes changed after the collection committed it (sha256 {found[:12]}…, "
                f"recorded {recorded[:12]}…)")  # fmt: skip
            raise ValueError(f"{path} {problem}; delete {root} and run the same collect command again (episodes "
                             "are seeded, so it records the same dataset)")  # fmt: skip


def committed_sha256(root: Path) -> dict[str, str]:
    """The sha256 of every file of the collection at ``root`` as committed (``meta/cadence_progress.json``); empty
    for a dataset without that record (written by LeRobot itself, or by an older Cadence)."""
    progress = root / PROGRESS_FILE
    return read_json(progress).get("sha256", {}) if progress.is_file() else {}


def episode_files(root: Path) -> list[Path]:
    return sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))


def data_files(root: Path) -> list[Path]:
    return sorted((root / "data").glob("chunk-*/file-*.parquet"))


def video_files(root: Path) -> list[Path]:
    """The camera videos, ``videos/KEY/chunk-*/file-*.mp4``."""
    return sorted((root / "videos").glob("*/chunk-*/file-*.mp4"))


def read_info(root: str | os.PathLike) -> dict:
    """The ``meta/info.json`` of the local LeRobot dataset at ``root`` (its ``fps``, ``features``, counts), read
    without touching its data; a missing folder or file raises FileNotFoundError and an unreadable one ValueError,
    naming it and the fix."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset at {root}: the folder does not exist; {COLLECT_HINT.format(root=root)}")
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{root} is not a LeRobot dataset: {info_path} is missing; "
                                f"{COLLECT_HINT.format(root=root)}")  # fmt: skip
    return read_json(info_path)


def check_dataset(root: str | os.PathLike) -> dict:
    """Validates a finalized local LeRobot dataset before anything tries to load it; returns its info.json.

    A missing folder or ``meta/info.json`` raises FileNotFoundError; an unreadable ``info.json``, a committed file
    whose bytes changed (:func:`verify_files`) and a dataset whose recording was not finalized (episodes or data
    parquet missing or without footer, or counts that disagree) raise ValueError. All name the file and the fix,
    instead of LeRobot's fallback to a Hub download.
    """
    root = Path(root)
    info = read_info(root)
    verify_files(root, committed_sha256(root))
    n_episodes = sum(num_rows(f, root) for f in episode_files(root))
    n_frames = sum(num_rows(f, root) for f in data_files(root))
    if n_episodes == 0 or (n_episodes, n_frames) != (info["total_episodes"], info["total_frames"]):
        fix = (f"the recording of {root} was interrupted before it was finalized; finish it by running the same "
               f"collect command again (it resumes), or delete the folder")  # fmt: skip
        raise ValueError(f"{fix}: info.json lists {info['total_episodes']} episodes and {info['total_frames']} "
                         f"frames, the parquet files hold {n_episodes} and {n_frames}")  # fmt: skip
    return info


def num_rows(path: Path, root: Path) -> int:
    """The rows of the parquet file ``path`` of the dataset at ``root`` (:func:`unreadable` if it has no footer)."""
    try:
        return pq.read_metadata(path).num_rows
    except (OSError, pa.ArrowInvalid) as e:
        raise unreadable(path, root, e) from e


def unreadable(path: Path, root: Path, error: Exception) -> ValueError:
    """The error for a parquet file of the dataset at ``root`` that cannot be read, naming it: a cadence
    collection resumes (its committed files are verified by hash first, so the file is one of an unfinished
    part); a dataset without that record must be written again."""
    if (root / PROGRESS_FILE).is_file():
        fix = "finish it by running the same collect command again (it resumes), or delete the folder"
    else:
        fix = "write the dataset again (it has no cadence record to resume from) or restore the file"
    return ValueError(f"{path} is truncated or corrupt ({error}): the recording of {root} was interrupted before it "
                      f"was finalized, or the file was damaged; {fix}")  # fmt: skip
