"""Windows per second of the fast window reader vs ``LeRobotDataset(..., delta_timestamps=...)`` on CPU.

Collects a demonstration dataset (InvertedPendulum-P, LQR expert, 20 episodes = 20k frames) into a
temporary folder unless ``--dataset DIR`` is given, then times batches of random windows of length L.

    python benchmarks/windows.py [--dataset DIR] [--batch 256] [--seconds 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from cadence.datasets import ACTION, OBS, WindowDataset, collect_dataset


def rate(fn, windows_per_call: int, seconds: float) -> float:
    """Windows per second of ``fn()``, timed for about ``seconds`` after one warm-up call."""
    fn()
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        calls += 1
    return calls * windows_per_call / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=None)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dataset or Path(tmp) / "ds"
        if args.dataset is None:
            collect_dataset("invertedpendulum_p", "lqr", 20, root, noise=0.5, seed=0, part_episodes=20, reference_episodes=1)
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        print(f"dataset: {root}\n")
        print("| L | fast reader (windows/s, batch %d) | LeRobotDataset (windows/s, one at a time) | speed-up |" % args.batch)
        print("|---|---|---|---|")
        g = torch.Generator().manual_seed(0)
        for L in (32, 256):
            fast = WindowDataset(root, keys=(OBS, ACTION), offsets=range(L))
            ours = rate(lambda: fast.sample(args.batch, g), args.batch, args.seconds)
            ref = LeRobotDataset("bench", root=root, video_backend="pyav",
                                 delta_timestamps={k: [i / fast.fps for i in range(L)] for k in (OBS, ACTION)})  # fmt: skip
            anchors = iter(torch.randint(len(ref), (10**6,), generator=g).tolist())
            theirs = rate(lambda: ref[next(anchors)], 1, args.seconds)
            print(f"| {L} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:,.0f}× |")


if __name__ == "__main__":
    main()
