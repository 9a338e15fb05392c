"""Training: the run layer (:mod:`.run`: ``train_bc`` / ``train_ppo``, what the CLI, the comparison, the demo
and the benchmarks call), the algorithms (:mod:`.bc`, :mod:`.ppo`), and what they share: the optimizer
(:mod:`.optim`), checkpoints (:mod:`.checkpoint`) and data parallelism (:mod:`.distributed`)."""

from .run import train, train_bc, train_ppo

__all__ = ["train", "train_bc", "train_ppo"]
