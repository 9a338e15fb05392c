"""Mamba's selective scan on CPU: the fused numba kernel vs mambapy's ``pscan``, in one run.

Times forward + backward of a 2-layer ``MambaBackbone`` (d_model 64, the size the 100k-parameter grids use) on
episodes of B × L frames with a reset at each start, both scans on the same weights and inputs, interleaved.

    python benchmarks/selective_scan.py [--threads 1] [--repeats 3] [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import DOCS, Run, write_section  # noqa: E402

from cadence.policies.backbones import make_backbone  # noqa: E402

SHAPES = [(32, 100), (8, 300), (1, 4150)]  # the memory grid's batches: cue task at D = 16, 256, 4096


def seconds_per_pass(backbone, x: torch.Tensor, resets: torch.Tensor, repeats: int) -> float:
    """Best of ``repeats`` forward + backward passes, after one warm-up pass."""
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        y, _ = backbone(x, None, resets)
        y.square().mean().backward()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="replace the section of docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    run = Run()
    lines = ["| B × L | numba (frames/s) | pscan (frames/s) | numba / pscan |", "|---|---|---|---|"]
    for B, L in SHAPES:
        fast = make_backbone("mamba", d_model=64, n_layers=2, scan="numba")
        ref = make_backbone("mamba", d_model=64, n_layers=2, scan="pscan")
        ref.load_state_dict(fast.state_dict())
        x, resets = torch.randn(B, L, 64), torch.zeros(B, L, dtype=torch.bool)
        resets[:, 0] = True
        s_fast, s_ref = (seconds_per_pass(bb, x, resets, args.repeats) for bb in (fast, ref))
        lines.append(f"| {B} × {L} | {B * L / s_fast:,.0f} | {B * L / s_ref:,.0f} | {s_ref / s_fast:.1f}× |")
        print(lines[-1], flush=True)
    section = (f"## Mamba's selective scan (`benchmarks/selective_scan.py`)\n\n{run.provenance()} Forward + backward "
               f"of a 2-layer `MambaBackbone` (d_model 64), best of {args.repeats}.\n\n" + "\n".join(lines) + "\n")
    print("\n" + section)
    if args.write:
        write_section(DOCS, "## Mamba's selective scan", section)


if __name__ == "__main__":
    main()
