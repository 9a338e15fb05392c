"""A run's checkpoints, the same for every trainer: ``RUN_DIR/checkpoints/{init,best,last}``.

Each is a policy ``save_pretrained`` directory (``config.json`` + ``model.safetensors``, written atomically:
a reader sees the old checkpoint or the new one), so every Cadence tool loads any of them:

* ``init`` — the policy as initialized (BC; the "before" of ``cadence-inspect``);
* ``best`` — the evaluation with the highest ``score`` so far (``EvalResult.score``: the normalized score
  when the task has reference returns, else the mean return — one rule for BC and PPO);
* ``last`` — the resume point: also holds ``training_state.pt``, the trainer's whole state (optimizer,
  schedule, counters, RNG states, history, best score) saved with ``torch.save`` and loaded with
  ``weights_only=True``, so a resumed run continues exactly and a foreign file is never unpickled. It also
  records ``elapsed_s``, the run's wall seconds up to that save over every process that trained it, so a resumed
  run knows the time its earlier processes spent (``Checkpoints.resumed_s``).

In a data-parallel run only rank 0 writes (``is_main``).
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..policies import SequencePolicy
from ..policies.policy import read_checkpoint_config

STATE_FILE = "training_state.pt"


def check_run_dir(run_dir: Path, resume: bool, policy: dict | None = None) -> None:
    """Refuse to start over a run directory that already holds checkpoints, unless resuming, and to resume it
    with another policy than its own: ``policy`` (the launch's ``policy`` section) must name the backbone of
    ``checkpoints/last`` and agree with the run's record ``.hydra/config.yaml``, where there is one, on every
    setting both have."""
    last = Path(run_dir) / "checkpoints" / "last"
    if not last.exists():
        return
    if not resume:
        raise ValueError(f"{run_dir} already holds a run; pass resume=true to continue it or run_dir=NEW_DIR to start another")
    if policy is None:
        return
    backbone = read_checkpoint_config(last)["policy"]["backbone"]
    if policy.get("backbone") != backbone:
        raise ValueError(f"{run_dir} is a {backbone} run; pass policy={backbone} to resume it, or run_dir=NEW_DIR "
                         f"to train {policy.get('backbone')}")  # fmt: skip
    record = Path(run_dir) / ".hydra" / "config.yaml"
    ran = OmegaConf.to_container(OmegaConf.load(record), resolve=True).get("policy") if record.is_file() else None
    ran = _leaves(ran or {})
    other = {k: (ran[k], v) for k, v in _leaves(policy).items() if k in ran and ran[k] != v}
    if other:
        key, (was, now) = next(iter(other.items()))
        raise ValueError(f"{run_dir} was trained with policy.{key}={was} ({record}), this launch has {now}; "
                         f"resume with the run's settings (policy.{key}={was}), or run_dir=NEW_DIR to train "
                         "these")  # fmt: skip


def _leaves(tree: dict, prefix: str = "") -> dict:
    """A nested dict as {"a.b": value}."""
    flat = {}
    for k, v in tree.items():
        flat |= _leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return flat


class Checkpoints:
    """The checkpoints of the run in ``run_dir`` (module docstring); ``run_info`` goes into every
    checkpoint's ``config.json`` (``extra.run``), ``best_score`` is the score of ``best``, ``resumed_s`` the wall
    seconds the run had spent in earlier processes, up to the ``last`` it resumed from (0 for a fresh run)."""

    def __init__(self, run_dir: str | Path, run_info: dict | None = None, is_main: bool = True):
        self.root, self.run_info, self.is_main = Path(run_dir) / "checkpoints", run_info or {}, is_main
        self.best_score, self.resumed_s, self.started = -math.inf, 0.0, time.perf_counter()

    def exists(self, name: str) -> bool:
        return (self.root / name).is_dir()

    def save(self, name: str, policy: SequencePolicy, step: int, history: list[dict],
             state: dict | None = None) -> Path | None:  # fmt: skip
        """Write ``checkpoints/NAME`` (rank 0 only); ``state``: the trainer's resume state (``last``)."""
        if not self.is_main:
            return None
        extra = {"step": step, "history": history[-1:], "run": self.run_info}
        files = None
        if state is not None:
            buf = io.BytesIO()
            elapsed = self.resumed_s + time.perf_counter() - self.started
            torch.save(state | {"best_score": self.best_score, "history": json.dumps(history), "elapsed_s": elapsed},
                       buf)  # fmt: skip
            files = {STATE_FILE: buf.getvalue()}
        return policy.save_pretrained(self.root / name, extra=extra, extra_files=files)

    def save_policy(self, name: str, policy: SequencePolicy) -> Path | None:
        """Write ``checkpoints/NAME`` with the policy alone (``init``)."""
        return policy.save_pretrained(self.root / name) if self.is_main else None

    def record(self, result: dict, policy: SequencePolicy, step: int, history: list[dict]) -> bool:
        """Append ``result`` (an evaluation with a ``score``) to ``history``; write ``best`` when it beats
        every earlier one. Returns whether it did."""
        history.append(result)
        if result["score"] <= self.best_score:
            return False
        self.best_score = result["score"]
        self.save("best", policy, step, history)
        return True

    def load_last(self, device: torch.device | str) -> tuple[dict, list[dict]] | None:
        """The resume state of ``last`` and the evaluation history, or None when there is none yet."""
        path = self.root / "last" / STATE_FILE
        if not path.is_file():
            return None
        try:
            state = torch.load(path, weights_only=True, map_location=device)
        except Exception as e:  # a truncated or foreign file: say which and what to do
            raise ValueError(f"cannot read {path} ({e}); delete {path.parent} to restart from the previous "
                             "checkpoint, or start a new run_dir") from e  # fmt: skip
        self.best_score = state.pop("best_score")
        self.resumed_s = float(state.pop("elapsed_s", 0.0))  # checkpoints written before it was recorded have none
        self.started = time.perf_counter()
        return state, json.loads(state.pop("history"))
