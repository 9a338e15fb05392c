"""``cadence-train algo=bc|ppo policy=NAME env=NAME [dataset=DIR] seed=0``: train a policy.

The run directory (``run_dir``, default ``runs/ALGO/ENV/POLICY/seedS``) holds the resolved config
(``.hydra/``), TensorBoard logs (``tb/``), checkpoints (``checkpoints/{best,last}``; BC also keeps the
policy as initialized in ``checkpoints/init`` for ``cadence-inspect``) and the final
evaluation (``eval.json``). ``resume=true`` continues ``checkpoints/last`` exactly; starting over a
run directory that already has checkpoints is refused, so nothing is overwritten by accident.

Data parallel on N processes (gloo on CPU, NCCL with ``device=cuda``, one GPU each; ``docs/scaling.md``):
``torchrun --nproc-per-node N -m cadence.scripts.train algo=bc ...``. Rank 0 writes the run directory.
"""

from __future__ import annotations

import json
import logging
import os
from functools import partial
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from cadence.analysis import fill_data_init
from cadence.configs import to_dataclass
from cadence.envs import make_env
from cadence.evaluation import evaluate
from cadence.perf import configure_allocator
from cadence.policies import count_params
from cadence.training.bc import BCConfig, BCTrainer
from cadence.training.demonstrations import load_demonstrations
from cadence.training.distributed import Distributed, close_distributed, init_distributed
from cadence.training.ppo import train_ppo
from cadence.training.run import build_policy, check_run_dir

log = logging.getLogger("cadence.train")


def train_bc(cfg: DictConfig) -> dict:
    """Behavior cloning on ``cfg.dataset``; returns the final evaluation."""
    if cfg.dataset is None:
        raise ValueError("algo=bc needs dataset=DIR, a LeRobot dataset written by "
                         "`cadence-collect env=... expert=... out=DIR`")  # fmt: skip
    algo = to_dataclass(BCConfig, cfg.algo, "algo")
    run_dir = Path(cfg.run_dir)
    check_run_dir(run_dir, cfg.resume)
    env = make_env(cfg.env)
    demos = load_demonstrations(cfg.dataset, env)
    fill_data_init(cfg.policy, demos.data, env.unwrapped.dt)  # policy init=data: the demonstrations' peak frequencies
    torch.manual_seed(cfg.seed)
    policy = build_policy(cfg, env, demos.stats)
    if Distributed.current().is_main and not (cfg.resume and (run_dir / "checkpoints" / "init").exists()):
        policy.save_pretrained(run_dir / "checkpoints" / "init")  # the "before" of cadence-inspect
    env.close()
    reference = demos.reference_returns
    env_fns = [partial(make_env, cfg.env) for _ in range(algo.eval_envs)]

    def evaluate_fn(p):
        r = evaluate(p, env_fns, algo.eval_episodes, seed=10_000 + cfg.seed, asynchronous=algo.asynchronous,
                     reference=reference).to_dict()  # fmt: skip
        return r | {"score": r["normalized_score"] if r["normalized_score"] is not None else r["mean_return"]}

    run_info = {"env": OmegaConf.to_container(cfg.env, resolve=True), "reference": reference,
                "dataset": str(cfg.dataset), "params": count_params(policy)}  # fmt: skip
    trainer = BCTrainer(policy, demos.data, algo, run_dir, evaluate_fn, cfg.seed, cfg.device, run_info)
    if cfg.resume and not trainer.resume():
        log.info("resume=true but %s has no checkpoint yet; starting fresh", run_dir)
    log.info("training %s (%d parameters) on %s, %d frames", cfg.policy.name, count_params(policy), cfg.dataset,
             len(demos.data.observations))  # fmt: skip
    result = trainer.fit() | {"params": count_params(policy), "history": trainer.history}
    if Distributed.current().is_main:
        (run_dir / "eval.json").write_text(json.dumps(result, indent=2))
    return result


@hydra.main(config_path="../configs", config_name="train", version_base=None)
def main(cfg: DictConfig) -> None:
    configure_allocator()
    try:
        cfg.device = init_distributed(cfg.device)  # under torchrun: join the group, cuda -> cuda:LOCAL_RANK
        main_rank = Distributed.current().is_main
        if cfg.algo.name == "bc":
            result = train_bc(cfg)
        elif cfg.algo.name == "ppo":
            result = train_ppo(cfg)
        else:
            raise ValueError(f"algo {cfg.algo.name!r} is not available; choose algo=bc or algo=ppo")
    except (ValueError, FileNotFoundError) as e:  # configuration and data problems: one line, with the fix
        raise SystemExit(f"cadence-train: error: {e}") from None
    finally:
        close_distributed()
    if not main_rank:
        return
    print(f"{cfg.policy.name} on {cfg.env.name}: score {result.get('score', float('nan')):.1f} -> {cfg.run_dir}")


if __name__ == "__main__":
    main()
