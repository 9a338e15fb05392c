"""Speed of the LinOSS layer's sequence evaluation on this machine, per scan path.

For B in {1, 16}, L in {1024, 8192, 50000}, P = 128 oscillators (H = 128 channels) it times the
layer's forward (no grad) and forward+backward, and the scan kernel alone, against the memory-copy
bandwidth measured in the same run, and prints (optionally writes) a Markdown table.

    python benchmarks/scan.py [--write docs/benchmarks.md] [--repeats 3]

Throughput is B·L·P oscillator-steps per second. The scan kernel reads the forcing and writes the
positions (2P real channels of 4 bytes each per step, 16 bytes per oscillator-step); "GB/s" is that
traffic over the kernel's time. Combinations that would not fit in memory are listed as skipped with
the reason instead of being run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from cadence.perf import configure_allocator
from cadence.policies.backbones.linoss import LinOSSLayer
from cadence.policies.backbones.scan import Transition, oscillator_scan

from report import describe_machine, git_commit, write_section

P = H = 128
SIZES = [(1, 1024), (1, 8192), (1, 50000), (16, 1024), (16, 8192), (16, 50000)]
METHODS = ["numba", "parallel", "loop"]
MEMORY_BUDGET = 8e9  # bytes; estimates above this are skipped (the machine has 24 GB, shared)


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (numba compiles on first call)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def copy_bandwidth(n_bytes: int = 1 << 30) -> float:
    """Bytes/s of a large tensor copy (read + write), best of 5."""
    src = torch.ones(n_bytes // 4)
    dst = torch.empty_like(src)
    t = best_time(lambda: dst.copy_(src), 5)
    return 2 * n_bytes / t


def estimated_bytes(method: str, B: int, L: int, backward: bool) -> float:
    """Rough peak memory of one layer call: float32 (B, L, 2P) activations, float64 scan internals."""
    act = B * L * 2 * P * 4
    if method == "numba":
        return act * (6 if backward else 4)
    if method == "parallel":  # 6 float64 tensors per level (+ shifted copies), log2(64) levels kept for autograd
        return act * 2 * 6 * (14 if backward else 4)
    return act * 2 * (10 if backward else 3)  # loop: per-step state tensors saved for backward


def run(repeats: int) -> tuple[list[dict], float]:
    torch.manual_seed(0)
    configure_allocator()
    bw = copy_bandwidth()
    rows = []
    for method in METHODS:
        layer = LinOSSLayer(P, H, "damped", scan=method)
        for B, L in SIZES:
            row = {"method": method, "B": B, "L": L}
            rows.append(row)
            if estimated_bytes(method, B, L, backward=False) > MEMORY_BUDGET:
                row["skip"] = f"needs ~{estimated_bytes(method, B, L, False) / 1e9:.0f} GB"
                continue
            u = torch.randn(B, L, H)
            with torch.no_grad():  # the recurrence alone, on the layer's own forcing and coefficients
                t, B_map, _ = layer._io()
                bu = (u @ B_map).contiguous()
                z0 = layer.initial_state(B)[:, 0]
                t = Transition(*(c.detach() for c in t.as_tuple()))
                row["scan_fwd"] = best_time(lambda: oscillator_scan(bu, t, z0, z0, None, method), repeats)
                row["layer_fwd"] = best_time(lambda: layer(u), repeats)
            if estimated_bytes(method, B, L, backward=True) > MEMORY_BUDGET or (method == "loop" and B * L > 200_000):
                row["skip_bwd"] = f"~{estimated_bytes(method, B, L, True) / 1e9:.0f} GB"
                print(format_row(row, bw), file=sys.stderr)
                continue
            bu_g = bu.clone().requires_grad_()
            t_g = Transition(*(c.clone().requires_grad_() for c in t.as_tuple()))
            u_g = u.clone().requires_grad_()

            def scan_fwd_bwd():
                xs, _, _ = oscillator_scan(bu_g, t_g, z0, z0, None, method)
                xs.backward(torch.ones_like(xs))

            def layer_fwd_bwd():
                y, _ = layer(u_g)
                y.backward(torch.ones_like(y))

            row["scan_fwd_bwd"] = best_time(scan_fwd_bwd, repeats)
            row["layer_fwd_bwd"] = best_time(layer_fwd_bwd, repeats)
            print(format_row(row, bw), file=sys.stderr)
    return rows, bw


def _ms(r: dict, key: str) -> str:
    return f"{r[key] * 1e3:.1f}" if key in r else "–"


def format_row(r: dict, bw: float) -> str:
    if "skip" in r:
        return f"| {r['method']} | {r['B']} | {r['L']} | skipped: {r['skip']} | | | | | |"
    el = r["B"] * r["L"] * P
    gbs = el * 16 / r["scan_fwd"]
    tp = f"{el / r['scan_fwd_bwd'] / 1e6:.0f}" if "scan_fwd_bwd" in r else f"skipped ({r['skip_bwd']})"
    return (f"| {r['method']} | {r['B']} | {r['L']} | {_ms(r, 'scan_fwd')} | {_ms(r, 'scan_fwd_bwd')} | "
            f"{el / r['scan_fwd'] / 1e6:.0f} / {tp} | {gbs / 1e9:.1f} ({gbs / bw:.0%}) | "
            f"{_ms(r, 'layer_fwd')} | {_ms(r, 'layer_fwd_bwd')} |")  # fmt: skip


def table(rows: list[dict], bw: float) -> str:
    lines = [
        f"Memory-copy bandwidth (1 GiB tensor copy, read + write): **{bw / 1e9:.1f} GB/s**",
        "",
        "Scan = the recurrence alone (forcing in, positions out); layer = the whole LinOSS layer "
        "(input map B, scan, readout C, skip D). Throughput in M oscillator-steps/s (B·L·P).",
        "",
        "| path | B | L | scan fwd ms | scan fwd+bwd ms | scan M osc-steps/s fwd / fwd+bwd | scan fwd GB/s (of copy) | layer fwd ms | layer fwd+bwd ms |",
        "|---|---|---|---|---|---|---|---|---|",
        *(format_row(r, bw) for r in rows),
    ]
    by = {(r["method"], r["B"], r["L"]): r for r in rows}
    fast, ref = by.get(("numba", 16, 8192), {}), by.get(("loop", 16, 8192), {})
    for key, what in (("scan_fwd_bwd", "scan"), ("layer_fwd_bwd", "layer")):
        if key in fast and key in ref:
            lines.append(f"\nnumba vs loop, {what} forward+backward at B=16, L=8192: **{ref[key] / fast[key]:.1f}×** faster")
    big = by.get(("numba", 16, 50000), {})
    if "layer_fwd_bwd" in big:
        lines.append(f"\nnumba at B=16, L=50000: layer forward+backward ran in {big['layer_fwd_bwd']:.2f} s (no out-of-memory)")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", type=Path, help="replace the scan section of this Markdown file")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows, bw = run(args.repeats)
    text = table(rows, bw)
    print(text)
    if args.write:
        commit = git_commit()
        section = (f"## LinOSS scan (`benchmarks/scan.py`)\n\nCommand: `python benchmarks/scan.py --write {args.write}` "
                   f"at commit {commit}, {time.strftime('%Y-%m-%d')}.\nMachine: {describe_machine()}.\n"
                   f"LinOSS layer: D-LinOSS, P = {P}, H = {H}, float32 activations, float64 state.\n\n{text}\n")  # fmt: skip
        write_section(args.write, "## LinOSS scan", section)


if __name__ == "__main__":
    main()
