"""Behavior cloning on camera frames: what the decoded frame cache costs, and training samples/s with a camera
against the same policy on state alone, in one run.

The dataset is ``--dataset DIR`` (any LeRobot v3 dataset with a camera that ``cadence-train`` reads), or by
default ``--episodes`` episodes of ``reacher_pixels`` (64 × 64 RGB top camera, the expert with DART noise 0.1)
collected into a temporary directory. Its cameras are decoded once into the uint8 cache of
:func:`cadence.datasets.load_demonstrations` (timed; its size is N × C × H × W bytes). Then, for each backbone,
``cadence-train algo=bc``'s own training step (:meth:`cadence.training.bc.BCTrainer.train_step`: a batch of
windows sampled from the cache, the policy with its image encoder, the masked MSE, backward, clipping, AdamW) runs
for about ``--seconds``, on the camera and state features and on the state features alone, at the same
parameter budget. "samples" are frames: B × L per step. Run on a quiet machine (the load is recorded):

    python benchmarks/image_bc.py [--rows mlp linoss gru] [--batch 16] [--window 8] [--seconds 10] [--write]
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

HEADING = "## BC on camera frames (`benchmarks/image_bc.py`)"


def measure(root: Path, policy: str, keys: list[str] | None, args: argparse.Namespace) -> dict:
    """Train steps of ``policy`` on the dataset's features ``keys`` (None: all, the camera included) for about
    ``args.seconds`` after two warm-up steps: samples/s, peak memory, parameters; and the cache's decode time."""
    from cadence.configs import compose, to_dataclass
    from cadence.datasets import load_demonstrations
    from cadence.envs import make_env
    from cadence.perf import PeakMemory
    from cadence.policies import PolicyConfig
    from cadence.training.bc import BCConfig, BCTrainer
    from cadence.training.run import build_policy, control_period

    cfg = compose("train", ["algo=bc", f"policy={policy}", "env=reacher_pixels", f"policy.param_budget={args.budget}"])
    env = make_env(cfg.env)
    t0 = time.perf_counter()
    demos = load_demonstrations(root, env, keys)
    decode_s = time.perf_counter() - t0
    dt = control_period(env)
    pcfg = to_dataclass(PolicyConfig, cfg.policy, "policy").fit_to_task(dt, None).fit_to_data(demos.data, dt)
    images = demos.data.images
    torch.manual_seed(0)
    model = build_policy(pcfg, env.observation_space, env.action_space, dt, demos.stats,
                         None if images is None else tuple(images.shape[1:]), demos.image_keys)  # fmt: skip
    algo = BCConfig(batch_size=args.batch, window=args.window, steps=10**9, batches="windows")
    with tempfile.TemporaryDirectory() as run_dir, PeakMemory() as memory:
        trainer = BCTrainer(model, demos.data, algo, run_dir)
        trainer.train_step()
        trainer.train_step()
        steps, t0 = 0, time.perf_counter()
        while steps < 3 or time.perf_counter() - t0 < args.seconds:
            trainer.train_step()
            steps += 1
        elapsed = time.perf_counter() - t0
    return {"samples_per_s": steps * args.batch * args.window / elapsed, "peak_mb": memory.peak_mb,
            "params": sum(p.numel() for p in model.parameters()), "decode_s": decode_s,
            "cache_bytes": 0 if images is None else images.numel(), "frames": len(demos.data.observations),
            "image_shape": None if images is None else tuple(images.shape[1:])}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="a LeRobot dataset with a camera (default: collect one)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes of reacher_pixels to collect")
    parser.add_argument("--rows", nargs="+", default=["mlp", "linoss", "gru"])
    parser.add_argument("--budget", type=int, default=250_000, help="parameters per policy, the encoder included")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--write", action="store_true", help="replace the section of docs/benchmarks.md")
    args = parser.parse_args()
    run = Run()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dataset
        if root is None:
            from cadence.datasets import collect_dataset

            root = Path(tmp) / "reacher_pixels"
            t0 = time.perf_counter()
            collect_dataset("reacher_pixels", "reacher", args.episodes, root, noise=0.1, seed=0)
            print(f"collected {args.episodes} episodes in {time.perf_counter() - t0:.0f} s", flush=True)
        lines = ["| backbone | observes | params | samples/s | camera / state | peak MiB |", "|---|---|---|---|---|---|"]
        cache = None
        for row in args.rows:
            camera = measure(root, row, None, args)
            state = measure(root, row, ["observation.state"], args)
            cache = cache or camera
            for what, r in (("state + camera", camera), ("state", state)):
                ratio = f"{camera['samples_per_s'] / state['samples_per_s']:.3f}" if r is camera else ""
                lines.append(f"| {row} | {what} | {r['params']:,} | {r['samples_per_s']:,.0f} | {ratio} | "
                             f"{r['peak_mb']:,.0f} |")  # fmt: skip
                print(lines[-1], flush=True)
    C, H, W = cache["image_shape"]
    source = f"`{args.dataset}`" if args.dataset else f"{args.episodes} episodes of `reacher_pixels`, collected"
    section = (f"{HEADING}\n\n{run.provenance()} Dataset: {source} ({cache['frames']:,} frames, one camera "
               f"{C} × {H} × {W}). Decoded frame cache: {cache['cache_bytes'] / 2**20:,.0f} MiB "
               f"({cache['frames']:,} × {C * H * W:,} bytes), decoded in {cache['decode_s']:.1f} s. Training: "
               f"{args.budget:,}-parameter policies (the image encoder included), batch {args.batch} windows × "
               f"{args.window} frames, {torch.get_num_threads()} thread(s).\n\n" + "\n".join(lines) + "\n")
    print("\n" + section)
    if args.write:
        write_section(DOCS, HEADING, section)


if __name__ == "__main__":
    main()
