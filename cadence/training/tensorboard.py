"""TensorBoard scalars, named alike by every trainer: ``train/*`` for the optimization (loss terms, ``lr``,
throughput) and ``eval/*`` for the evaluations (``score``, ``mean_return``, ``normalized_score``,
``success_rate``), against the trainer's own step (gradient steps in BC, environment steps in PPO)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

EVAL_SCALARS = ("score", "mean_return", "normalized_score", "success_rate", "validation_loss")


class Scalars:
    """``RUN_DIR/tb`` on rank 0 (``enabled``); a no-op elsewhere. ``purge_step`` drops what a killed run
    logged after its last checkpoint, so a resumed run's curves continue cleanly."""

    def __init__(self, run_dir: Path, purge_step: int, enabled: bool = True):
        self.writer = SummaryWriter(Path(run_dir) / "tb", purge_step=purge_step) if enabled else None

    def train(self, metrics: dict[str, float], step: int) -> None:
        """``train/NAME`` for every entry of ``metrics``."""
        for k, v in metrics.items() if self.writer else ():
            self.writer.add_scalar(f"train/{k}", v, step)

    def eval(self, result: dict, step: int) -> None:
        """``eval/NAME`` for the evaluation's :data:`EVAL_SCALARS` that it has."""
        for k in EVAL_SCALARS if self.writer else ():
            if result.get(k) is not None:
                self.writer.add_scalar(f"eval/{k}", result[k], step)

    def close(self) -> None:
        if self.writer:
            self.writer.close()
