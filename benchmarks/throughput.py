"""BC training throughput of every backbone over long windows: samples/s of a whole training step.

A step is what ``cadence-train algo=bc`` does per batch (:class:`cadence.training.bc.BCObjective`: the policy,
its masked MSE loss, backward, gradient clipping, AdamW over :func:`cadence.training.optim.param_groups`), on B
windows of L frames of the memory reacher's spaces, each policy at the same parameter budget; the Transformer's
context covers L (``fit_to_task`` with a memory horizon of L − 1). "samples" are frames: B × L per step.

Columns: alone (one process, ``--threads`` threads) and two at once (two processes started together, each
with ``--threads / 2`` threads, as the grid's launcher shares the cores): the rate of each, and its ratio to
alone. Peak memory is the training process's (:class:`cadence.perf.PeakMemory`). Mamba also runs with mambapy's
``pscan`` for reference. Run on a quiet machine (the load average is recorded):

    python benchmarks/throughput.py [--windows 16 256 1024 4096] [--batch 8] [--seconds 4] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import DOCS, Run, write_section  # noqa: E402

ROWS = {"linoss": ("linoss", {}), "gru": ("gru", {}), "transformer": ("transformer", {}), "mamba": ("mamba", {}),
        "mamba (pscan)": ("mamba", {"scan": "pscan"}), "mlp": ("mlp", {})}  # fmt: skip
BUDGET = 100_000


def measure(row: str, L: int, batch: int, seconds: float, profile: bool = False) -> dict:
    """Train steps of ``row``'s policy on random windows for about ``seconds`` (at least 2) after a warm-up step;
    with ``profile``, then 20 more under ``torch.profiler``, whose table (self CPU time per op) is printed."""
    from cadence.configs import compose, to_dataclass
    from cadence.envs import make_env
    from cadence.perf import PeakMemory
    from cadence.policies import PolicyConfig, make_policy
    from cadence.training.bc import BCObjective
    from cadence.training.optim import RECURRENCE, adamw, param_groups

    config, kwargs = ROWS[row]
    cfg = compose("train", [f"policy={config}", "env=memory_reacher", f"policy.param_budget={BUDGET}"])
    pcfg = to_dataclass(PolicyConfig, cfg.policy, "policy")
    pcfg = PolicyConfig(**{**vars(pcfg), "backbone_kwargs": {**pcfg.backbone_kwargs, **kwargs}})
    env = make_env(cfg.env)
    dt = float(env.unwrapped.dt)
    torch.manual_seed(0)
    policy = make_policy(pcfg.fit_to_task(dt, L - 1), env.observation_space, env.action_space, control_period=dt)
    objective = BCObjective(policy, "mse")
    opt = adamw(param_groups(policy, 1e-4, 1e-3, {RECURRENCE: 1.0}), 1e-3)  # the trainers' optimizer
    obs = torch.randn(batch, L, env.observation_space.shape[0])
    actions = torch.rand(batch, L, env.action_space.shape[0]) * 2 - 1
    valid, resets = torch.ones(batch, L), torch.zeros(batch, L, dtype=torch.bool)
    resets[:, 0] = True

    def step():
        loss, *_ = objective(obs, actions, valid, None, resets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()

    with PeakMemory() as memory:
        step()
        steps, t0 = 0, time.perf_counter()
        while steps < 2 or time.perf_counter() - t0 < seconds:
            step()
            steps += 1
        elapsed = time.perf_counter() - t0
    if profile:
        with torch.profiler.profile() as prof:
            for _ in range(20):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    return {"samples_per_s": steps * batch * L / elapsed, "peak_mb": memory.peak_mb,
            "params": sum(p.numel() for p in policy.parameters())}  # fmt: skip


def run_cells(row: str, L: int, batch: int, seconds: float, threads: int, copies: int) -> list[dict] | str:
    """``copies`` processes measuring the same cell at once, ``threads`` threads each: their results, or why they
    failed (a process killed by the kernel, exit -9, ran out of memory)."""
    env = os.environ | {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
    cmd = [sys.executable, __file__, "--cell", row, str(L), "--batch", str(batch), "--seconds", str(seconds)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    outs = [p.communicate()[0] for p in procs]
    if failed := [p.returncode for p in procs if p.returncode != 0]:
        return "out of memory (killed)" if -9 in failed else f"failed (exit {failed[0]}: `{' '.join(cmd)}`)"
    return [json.loads(out.strip().splitlines()[-1]) for out in outs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[16, 256, 1024, 4096])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--write", action="store_true", help="replace the section of docs/benchmarks.md")
    parser.add_argument("--cell", nargs=2, metavar=("ROW", "L"), help=argparse.SUPPRESS)  # one measurement
    parser.add_argument("--profile", nargs=2, metavar=("ROW", "L"), help="profile one cell in this process (--threads)")
    args = parser.parse_args()
    if args.cell:
        print(json.dumps(measure(args.cell[0], int(args.cell[1]), args.batch, args.seconds)))
        return
    if args.profile:
        torch.set_num_threads(args.threads)
        print(json.dumps(measure(args.profile[0], int(args.profile[1]), args.batch, args.seconds, profile=True)))
        return
    run = Run()
    lines = ["| backbone | L | params | alone (samples/s) | peak MiB | two at once (samples/s each) | two / alone |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in args.rows:
        for L in args.windows:
            alone = run_cells(row, L, args.batch, args.seconds, args.threads, 1)
            pair = run_cells(row, L, args.batch, args.seconds, max(1, args.threads // 2), 2)
            if isinstance(alone, str):
                lines.append(f"| {row} | {L} | | {alone} | | | |")
            elif isinstance(pair, str):
                a = alone[0]
                lines.append(f"| {row} | {L} | {a['params']:,} | {a['samples_per_s']:,.0f} | {a['peak_mb']:,.0f} | "
                             f"{pair} | |")  # fmt: skip
            else:
                a, each = alone[0], sum(r["samples_per_s"] for r in pair) / 2
                lines.append(f"| {row} | {L} | {a['params']:,} | {a['samples_per_s']:,.0f} | {a['peak_mb']:,.0f} | "
                             f"{each:,.0f} | {each / a['samples_per_s']:.2f} |")  # fmt: skip
            print(lines[-1], flush=True)
    section = (f"## BC training throughput (`benchmarks/throughput.py`)\n\n{run.provenance()} Batch {args.batch}, "
               f"{BUDGET:,}-parameter policies on the memory reacher's spaces; alone: {args.threads} thread(s); two at "
               f"once: two processes together, {max(1, args.threads // 2)} thread(s) each.\n\n" + "\n".join(lines) + "\n")
    print("\n" + section)
    if args.write:
        write_section(DOCS, "## BC training throughput", section)


if __name__ == "__main__":
    main()
