"""``cadence-train algo=bc|ppo policy=NAME env=NAME [dataset=DIR] seed=0``: train a policy.

A thin Hydra wrapper around :func:`cadence.training.train` (``train_bc`` / ``train_ppo``).

The run directory (``run_dir``, default ``runs/ALGO/ENV/POLICY/seedS``) holds the resolved config
(``.hydra/``), TensorBoard logs (``tb/``), checkpoints (``checkpoints/{best,last}``; BC also keeps the
policy as initialized in ``checkpoints/init`` for ``cadence-inspect``) and the final
evaluation (``eval.json``). ``resume=true`` continues ``checkpoints/last`` exactly; starting over a
run directory that already has checkpoints is refused, so nothing is overwritten by accident.

Data parallel on N processes (gloo on CPU, NCCL with ``device=cuda``, one GPU each; ``docs/scaling.md``):
``torchrun --nproc-per-node N -m cadence.scripts.train algo=bc ...``. Rank 0 writes the run directory.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cadence.perf import configure_allocator
from cadence.training import train
from cadence.training.distributed import Distributed, close_distributed, init_distributed


@hydra.main(config_path="../configs", config_name="train", version_base=None)
def main(cfg: DictConfig) -> None:
    configure_allocator()
    try:
        cfg.device = init_distributed(cfg.device)  # under torchrun: join the group, cuda -> cuda:LOCAL_RANK
        main_rank = Distributed.current().is_main
        result = train(cfg)
    except (ValueError, FileNotFoundError) as e:  # configuration and data problems: one line, with the fix
        raise SystemExit(f"cadence-train: error: {e}") from None
    finally:
        close_distributed()
    if main_rank:
        print(f"{cfg.policy.name} on {cfg.env.name}: score {result.get('score', float('nan')):.1f} -> {cfg.run_dir}")


if __name__ == "__main__":
    main()
