"""Environment steps per second of SyncVectorEnv (all sub-envs in this process) vs AsyncVectorEnv (one
worker process per sub-env) on a MuJoCo task, with and without a policy choosing the actions.

Rows: N sub-envs stepped by 1 process (Sync) or by N worker processes (Async). "env only" steps with
seeded random actions; "with policy" also calls a 0.1M LinOSS policy's ``act`` on the (N, O) batch
each step, as evaluation and PPO collection do. Each cell runs for ``--seconds`` after a warm-up of
50 steps; throughput = N · steps / time. The machine may be shared, so the load average is printed.

    python benchmarks/vector_envs.py [--env halfcheetah] [--envs 1 2 4] [--seconds 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from report import describe_machine, git_commit, write_section

from cadence.envs import make_env, make_vector_env
from cadence.policies import PolicyConfig, make_policy

HEADING = "## Parallel rollouts (`benchmarks/vector_envs.py`)"


def throughput(env_name: str, num_envs: int, asynchronous: bool, policy, seconds: float) -> float:
    """Environment steps per second of ``num_envs`` sub-envs (N · vector steps / s)."""
    envs = make_vector_env(env_name, num_envs, asynchronous, seed=0)
    try:
        obs, _ = envs.reset(seed=0)
        if policy is not None:
            policy.reset(num_envs)

        def step(obs):
            if policy is None:
                action = envs.action_space.sample()
            else:
                action = policy.act(obs).numpy()
            return envs.step(action)[0]

        for _ in range(50):
            obs = step(obs)
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            obs = step(obs)
            steps += 1
        return num_envs * steps / (time.perf_counter() - t0)
    finally:
        envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="halfcheetah", help="an env config name (cadence/configs/env)")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--write", type=Path, default=None, help="replace this section of the given Markdown file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = make_env(args.env)
    torch.manual_seed(0)
    policy = make_policy(PolicyConfig(backbone="linoss", param_budget=100_000), env.observation_space,
                         env.action_space, control_period=env.unwrapped.dt).eval()  # fmt: skip
    env.close()
    load_start, t_start = os.getloadavg(), time.perf_counter()
    rows = []
    for label, pol in (("env only", None), ("with policy", policy)):
        for n in args.envs:
            sync = throughput(args.env, n, False, pol, args.seconds)
            asyn = throughput(args.env, n, True, pol, args.seconds)
            workers = f"{n} worker{'s' * (n > 1)}"
            rows.append(f"| {label} | {n} | {sync:,.0f} | {asyn:,.0f} ({workers}) | {asyn / sync:.2f}× |")
            print(rows[-1], flush=True)
    load_end = os.getloadavg()
    lines = [
        HEADING, "",
        f"`python benchmarks/vector_envs.py --env {args.env} --envs {' '.join(map(str, args.envs))} --seconds "
        f"{args.seconds:g}` at {git_commit()} on {describe_machine()}. Load average (1/5/15 min) "
        f"{' / '.join(f'{x:.1f}' for x in load_start)} at the start, {' / '.join(f'{x:.1f}' for x in load_end)} at "
        f"the end ({time.perf_counter() - t_start:.0f} s): the machine is shared, so compare rows within this run.",
        "",
        f"Environment steps per second on `{args.env}` (MuJoCo), N sub-envs: Sync = 1 process steps all N, "
        "Async = one worker process per sub-env (`algo.asynchronous=true`, `evaluate(..., asynchronous=True)`). "
        "\"with policy\": a 0.1M LinOSS policy acts on the batch every step.",
        "",
        "| actions | N | Sync (env steps/s, 1 process) | Async (env steps/s) | Async / Sync |",
        "|---|---|---|---|---|",
        *rows,
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(args.write, HEADING, text)


if __name__ == "__main__":
    main()
