"""``cadence-train algo=bc|ppo policy=NAME env=NAME [dataset=DIR] seed=0``: train a policy.

A thin Hydra wrapper around :func:`cadence.training.train` (``train_bc`` / ``train_ppo``). BC reads any local
LeRobot v3 dataset (``docs/own_dataset.md``); the env it is evaluated on is any env config, or any Gymnasium id
with ``env.id=ID env.name=NAME`` (a third-party env: ``env.id=module:EnvId``). It prints the score: the normalized
score when the dataset records reference returns (``cadence-collect`` does), else the mean return.

The run directory (``run_dir``, default ``runs/ALGO/ENV/POLICY/seedS``) holds the config (``.hydra/``,
written once the launch has passed every check: a refused launch changes nothing), TensorBoard logs (``tb/``), checkpoints (``checkpoints/{best,last}``; BC also keeps the
policy as initialized in ``checkpoints/init`` for ``cadence-inspect``) and the final
evaluation (``eval.json``). ``resume=true`` continues ``checkpoints/last`` exactly; starting over a
run directory that already has checkpoints is refused, so nothing is overwritten by accident.

Data parallel on N processes (gloo on CPU, NCCL with ``device=cuda``, one GPU each; ``docs/scaling.md``):
``torchrun --nproc-per-node N -m cadence.scripts.train algo=bc ...``. Rank 0 writes the run directory.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cadence.scripts.cli import command

DISK_FULL = ("checkpoints/last (the latest save) is kept; free some space and run the same command with "
             "resume=true to continue from it")  # fmt: skip


def record_launch(cfg: DictConfig) -> Path:
    """Write what Hydra writes into the run directory (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``)
    once the launch has passed every check (``train.yaml`` sets ``hydra.output_subdir: null``), so that a refused
    launch leaves the record of the run it was refused from as it was."""
    hydra_cfg = HydraConfig.instance().cfg
    out = Path(hydra_cfg.hydra.runtime.output_dir) / ".hydra"
    out.mkdir(parents=True, exist_ok=True)
    for name, node in (("config", cfg), ("hydra", hydra_cfg), ("overrides", hydra_cfg.hydra.overrides.task)):
        OmegaConf.save(node, out / f"{name}.yaml")
    return out


@command("cadence-train", "train", disk_full=DISK_FULL)
def main(cfg: DictConfig) -> None:
    from cadence.perf import configure_allocator
    from cadence.training import train
    from cadence.training.distributed import (Distributed, close_distributed, exit_without_finalizing,
                                              init_distributed)  # fmt: skip
    from cadence.training.run import check_config

    configure_allocator()
    try:
        cfg.device = init_distributed(cfg.device)  # under torchrun: join the group, cuda -> cuda:LOCAL_RANK
        main_rank, distributed = Distributed.current().is_main, Distributed.current().enabled
        check_config(cfg)
        if main_rank:
            record_launch(cfg)
        result = train(cfg)
    finally:
        close_distributed()
    if main_rank and cfg.get("env") is None:
        print(f"{cfg.policy.name} on {cfg.dataset} (no env): held-out loss {result.get('validation_loss', float('nan')):.4f}"
              f" -> {cfg.run_dir}")  # fmt: skip
    elif main_rank:
        normalized = result.get("normalized_score") is not None
        kind = "normalized score" if normalized else "score = mean return (no reference returns)"
        print(f"{cfg.policy.name} on {cfg.env.name}: {kind} {result.get('score', float('nan')):.1f} -> {cfg.run_dir}")
    if distributed:  # a finished rank: its exit status is 0, not gloo's teardown race (exit_without_finalizing)
        exit_without_finalizing(0)


if __name__ == "__main__":
    main()
