"""PPO training throughput, Cadence against Stable-Baselines3, on the same task and rollout sizes, in one run.

Both train PPO on ``--env`` with N envs × T steps per rollout (a synchronous vector env, one process), E epochs
over M minibatches per rollout, for ``--steps`` environment steps; steps/s is environment steps over the whole
training (rollouts and updates; setup and evaluation excluded).

* Stable-Baselines3 (a benchmark-only dependency: ``pip install -e .[bench]``): ``PPO("MlpPolicy", ...)`` with
  ``n_steps=T``, ``batch_size=N·T/M``, ``n_epochs=E``, its default actor and critic (two hidden layers of 64,
  tanh), no observation or reward normalization.
* Cadence: ``cadence-train algo=ppo policy=P policy.head=gaussian policy.d_model=64`` with ``algo.num_envs=N``,
  ``algo.num_steps=T``, ``algo.num_minibatches=M``, ``algo.update_epochs=E`` (observation and reward
  normalization on, as by default) for the MLP and the recurrent backbones (TBPTT windows of ``algo.window``).

    python benchmarks/ppo_throughput.py [--env halfcheetah] [--steps 40960] [--threads 1] [--write]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import DOCS, Run, write_section  # noqa: E402

from cadence.configs import compose  # noqa: E402
from cadence.envs import EnvConfig, make_env  # noqa: E402
from cadence.training import train_ppo  # noqa: E402

N_ENVS, N_STEPS, EPOCHS, MINIBATCHES = 8, 256, 10, 4


def sb3_rate(env_name: str, steps: int) -> float:
    """Environment steps per second of Stable-Baselines3's PPO (``learn`` timed whole)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    env_id = EnvConfig.load(env_name).id
    envs = DummyVecEnv([lambda: make_env(env_name) for _ in range(N_ENVS)])
    model = PPO("MlpPolicy", envs, n_steps=N_STEPS, batch_size=N_ENVS * N_STEPS // MINIBATCHES, n_epochs=EPOCHS,
                device="cpu", seed=0, verbose=0)  # fmt: skip
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    rate = model.num_timesteps / (time.perf_counter() - t0)
    envs.close()
    print(f"sb3 ppo on {env_id}: {rate:,.0f} steps/s", file=sys.stderr, flush=True)
    return rate


def cadence_rate(env_name: str, backbone: str, steps: int, run_dir: Path) -> float:
    """Environment steps per second of Cadence's PPO with ``backbone`` (its own ``steps_per_s``)."""
    cfg = compose("train", ["algo=ppo", f"policy={backbone}", "policy.head=gaussian", "policy.d_model=64",
                            f"env={env_name}", f"run_dir={run_dir}", f"algo.steps={steps}",
                            f"algo.num_envs={N_ENVS}", f"algo.num_steps={N_STEPS}",
                            f"algo.num_minibatches={MINIBATCHES}", f"algo.update_epochs={EPOCHS}",
                            f"algo.eval_every={10 * steps}", f"algo.save_every={10 * steps}",
                            "algo.eval_episodes=1", "algo.eval_envs=1"])  # fmt: skip
    rate = train_ppo(cfg)["steps_per_s"]
    print(f"cadence ppo {backbone}: {rate:,.0f} steps/s", file=sys.stderr, flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="halfcheetah")
    parser.add_argument("--steps", type=int, default=40_960)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backbones", nargs="+", default=["mlp", "gru", "linoss"])
    parser.add_argument("--write", action="store_true", help="replace the section of docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = Run()
    sb3 = sb3_rate(args.env, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        ours = {b: cadence_rate(args.env, b, args.steps, Path(tmp) / b) for b in args.backbones}
    lines = ["| implementation | policy | env steps/s | / SB3 |", "|---|---|---|---|",
             f"| Stable-Baselines3 {__import__('stable_baselines3').__version__} PPO | MLP 64-64 (tanh) | {sb3:,.0f} | 1.00 |"]  # fmt: skip
    lines += [f"| Cadence PPO | {b} (d_model 64) | {r:,.0f} | {r / sb3:.2f} |" for b, r in ours.items()]
    section = (f"## PPO throughput against Stable-Baselines3 (`benchmarks/ppo_throughput.py`)\n\n{run.provenance()} "
               f"{args.env}, {args.steps:,} env steps each: {N_ENVS} envs × {N_STEPS} steps per rollout, {EPOCHS} epochs "
               f"× {MINIBATCHES} minibatches; one process, a synchronous vector env.\n\n" + "\n".join(lines) + "\n")
    print("\n" + section)
    if args.write:
        write_section(DOCS, "## PPO throughput", section)


if __name__ == "__main__":
    main()
