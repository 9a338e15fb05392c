"""PPO learning checks: return at a fixed budget and training throughput, per task, backbone and seed.

Each run is ``cadence-train algo=ppo policy=NAME policy.head=gaussian env=ENV seed=S`` (the Hydra configs
of ``cadence/configs``, composed here and passed to :func:`cadence.training.train_ppo`) with
``algo.steps`` set to the check's budget and ``policy.d_model`` to ``--d-model`` (or
``policy.param_budget`` to ``--param-budget``). "Return" is the final deterministic evaluation (mean
action, 10 episodes); "steps/s" counts environment steps over rollout and update time (evaluations
excluded).

Checks (the targets of the PPO issue):

* ``ip``: InvertedPendulum-v5, 200k steps, mlp and linoss reach ≥ 950 (mean over seeds).
* ``ip_p``: InvertedPendulum-P (positions only), 200k steps: linoss and gru reach ≥ 900, while the
  memory-less mlp (frame_stack 1) stays clearly lower (below 0.7 × the worse of the two).
* ``halfcheetah``: HalfCheetah-v5, 1M steps, mlp reaches ≥ 1500.
* ``halfcheetah_p``: HalfCheetah-P (positions only), 300k steps: the RL track of the comparison
  (docs/results.md) on a locomotion POMDP; linoss, gru and the memory-less mlp, no target.

    python benchmarks/ppo_learning.py [--checks ip ip_p halfcheetah halfcheetah_p] [--seeds 0 1 2]
                                      [--backbones mlp linoss] [--param-budget N]
                                      [--out runs/bench_ppo] [--write docs/rl.md]

Runs go one after another in this process (torch uses ``--threads`` threads); finished runs
(``eval.json`` present in their run directory) are read back instead of being run again, so an
interrupted benchmark continues where it stopped. ``--steps`` overrides every budget (quick trials).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from cadence.configs import compose
from cadence.training import train_ppo

from report import describe_machine, git_commit, write_section


@dataclass
class Check:
    env: str
    """Env config name (cadence/configs/env)."""
    budget: int
    """Environment steps per run."""
    targets: dict[str, float]
    """Backbone -> minimum mean return."""
    below: tuple[str, ...] = ()
    """Backbones that must stay below 0.7 × the worst mean return of the ``targets`` backbones."""
    measured: tuple[str, ...] = ()
    """Backbones that are run and reported with no target (a comparison, not a check)."""


CHECKS = {
    "ip": Check("invertedpendulum", 200_000, {"mlp": 950, "linoss": 950}),
    "ip_p": Check("invertedpendulum_p", 200_000, {"linoss": 900, "gru": 900}, below=("mlp",)),
    "halfcheetah": Check("halfcheetah", 1_000_000, {"mlp": 1500}),
    "halfcheetah_p": Check("halfcheetah_p", 300_000, {}, measured=("linoss", "gru", "mlp")),
}


def run(check: Check, backbone: str, seed: int, budget: int, size: str, out: Path) -> dict:
    """One training run (or its saved result); returns eval.json plus the wall time. ``size`` is the
    policy's sizing override: ``policy.d_model=D`` or ``policy.param_budget=N``."""
    run_dir = out / check.env / backbone / f"seed{seed}"
    done = run_dir / "eval.json"
    if done.is_file():
        return json.loads(done.read_text())
    overrides = ["algo=ppo", f"policy={backbone}", "policy.head=gaussian", size,
                 f"env={check.env}", f"seed={seed}", f"run_dir={run_dir}", f"algo.steps={budget}",
                 f"algo.eval_every={budget // 4}", f"algo.save_every={budget // 2}"]  # fmt: skip
    cfg = compose("train", overrides)
    t0 = time.perf_counter()
    result = train_ppo(cfg) | {"wall_s": time.perf_counter() - t0}
    done.write_text(json.dumps(result, indent=2))
    return result


def table(rows: list[dict]) -> str:
    lines = ["| check | env | backbone | params | steps | seeds | return at budget (mean ± std) | per seed | target | "
             "steps/s | wall per run |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        rets = [x["mean_return"] for x in r["runs"]]
        lines.append(f"| {r['check']} | {r['env']} | {r['backbone']} | {r['runs'][0]['params']:,} | {r['budget']:,} | "
                     f"{len(rets)} | "
                     f"{np.mean(rets):.0f} ± {np.std(rets):.0f} | {', '.join(f'{x:.0f}' for x in rets)} | "
                     f"{r['target']} | {np.mean([x['steps_per_s'] for x in r['runs']]):.0f} | "
                     f"{np.mean([x['wall_s'] for x in r['runs']]):.0f} s |")  # fmt: skip
    return "\n".join(lines)


def verdicts(name: str, check: Check, means: dict[str, float]) -> list[str]:
    """One line per target of ``check`` that was run: PASS/FAIL and the numbers."""
    lines = [f"{name}: {b} {means[b]:.0f} {'PASS' if means[b] >= t else 'FAIL'} (≥ {t})"
             for b, t in check.targets.items() if b in means]  # fmt: skip
    run_targets = [means[b] for b in check.targets if b in means]
    for b in check.below:
        if b in means and run_targets:
            bound = 0.7 * min(run_targets)
            lines.append(f"{name}: {b} {means[b]:.0f} {'PASS' if means[b] < bound else 'FAIL'} (< {bound:.0f})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", nargs="+", default=list(CHECKS), choices=list(CHECKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--backbones", nargs="+", help="only these backbones (default: every backbone of a check)")
    parser.add_argument("--steps", type=int, help="override every check's budget")
    parser.add_argument("--d-model", type=int, default=64, help="policy.d_model of every run")
    parser.add_argument("--param-budget", type=int, help="size every policy to this many parameters instead "
                        "(policy.param_budget, the policy without its value head): a parameter-matched comparison")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_ppo"))
    parser.add_argument("--write", type=Path, help="replace the '## Measured results' section of this Markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = f"policy.param_budget={args.param_budget}" if args.param_budget else f"policy.d_model={args.d_model}"
    load_before, t0 = os.getloadavg()[0], time.perf_counter()
    rows, lines = [], []
    for name in args.checks:
        check = CHECKS[name]
        budget = args.steps or check.budget
        out = args.out / (f"{name}_{budget}" + (f"_p{args.param_budget}" if args.param_budget else ""))
        backbones = [b for b in (*check.targets, *check.below, *check.measured)
                     if not args.backbones or b in args.backbones]
        means = {}
        for backbone in backbones:
            runs = [run(check, backbone, s, budget, size, out) for s in args.seeds]
            means[backbone] = float(np.mean([r["mean_return"] for r in runs]))
            target = (f"≥ {check.targets[backbone]}" if backbone in check.targets else
                      "< 0.7 × recurrent" if backbone in check.below else "none (comparison)")
            rows.append({"check": name, "env": check.env, "backbone": backbone, "budget": budget, "runs": runs,
                         "target": target})  # fmt: skip
        lines += verdicts(name, check, means)
    section = "\n".join([
        "## Measured results\n",
        f"`python benchmarks/ppo_learning.py {' '.join(sys.argv[1:])}` at {git_commit()} on {describe_machine()}; "
        f"{size}. Load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
        f"({time.perf_counter() - t0:.0f} s in all): the machine is shared, so steps/s are indicative.\n",
        table(rows) + "\n",
        "\n".join(f"- {v}" for v in lines) + "\n",
    ])  # fmt: skip
    print(section)
    if args.write:
        write_section(args.write, "## Measured results", section)


if __name__ == "__main__":
    main()
