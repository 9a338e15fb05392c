"""Speed of the LinOSS layer's sequence evaluation on this machine, per scan path.

For B in {1, 16}, L in {1024, 8192, 50000}, P = 128 oscillators (H = 128 channels) it times the
layer's forward (no grad) and forward+backward, and the scan kernel alone, against the memory-copy
bandwidth measured in the same run, and prints (optionally writes) a Markdown table.

    python benchmarks/scan.py [--write docs/benchmarks.md] [--repeats 3] [--roofline-only]

Throughput is B·L·P oscillator-steps per second. The scan kernel reads the forcing and writes the
positions (2P real channels of 4 bytes each per step, 16 bytes per oscillator-step); "GB/s" is that
traffic over the kernel's time. Combinations that would not fit in memory are listed as skipped with
the reason instead of being run.

It then (or alone, with ``--roofline-only``) times the LinOSS layer's training step, forward + backward, at
B = 16, L = 8192, P = 128 for H in {4, 16, 128}, through the fused kernel (module ``fused_layer``) and
the unfused path (``u @ B̃``, the scan, ``xs @ C̃``), against a roofline measured in the same
run: max(bytes / copy bandwidth, FLOPs / float32 matmul rate (2048² @ 2048², best of 5)). With N = 2P state
channels and T the fused kernel's ``CHECKPOINT``, what a training step cannot avoid is

* bytes: u read by the forward and by the backward, y written, ∂ℓ/∂y read, ∂ℓ/∂u written (5 · 4 B·L·H, float32);
  the float64 checkpoints written and read back (2 · 8 · B·⌈L/T⌉·2N); the parameters B̃, C̃ and the 6 coefficients
  read and their gradients written (2 · 4 · (2HN + 6N)).
* FLOPs: the two maps forward (u B̃ and x C̃, 2·H·N each per step) and their four products backward (∂ℓ/∂y C̃ᵀ,
  gbu B̃ᵀ, uᵀ gbu, xᵀ ∂ℓ/∂y): 12·H·N per step; the recurrence, 10 per channel-step forward (2 × 3 products,
  2 × 2 sums) and 22 backward (Mᵀa through the gate 6, gbu 3, the six coefficient sums 12, adding the readout's
  adjoint 1): 32·N per step. Recomputing states from checkpoints is the kernel's choice and is not counted.

The ratio measured / roofline (of the path the layer takes by default) says how far the layer is from what the
machine allows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from cadence.perf import configure_allocator
from cadence.policies.backbones import linoss
from cadence.policies.backbones.fused_layer import CHECKPOINT
from cadence.policies.backbones.linoss import LinOSSLayer
from cadence.policies.backbones.scan import Transition, oscillator_scan

from report import Run, describe_machine, git_commit, write_section

P = H = 128
SIZES = [(1, 1024), (1, 8192), (1, 50000), (16, 1024), (16, 8192), (16, 50000)]
METHODS = ["numba", "parallel", "loop"]
MEMORY_BUDGET = 8e9  # bytes; estimates above this are skipped (the machine has 24 GB, shared)
ROOFLINE_SIZE = (16, 8192)  # B, L of the training-step roofline
ROOFLINE_WIDTHS = [4, 16, 128]  # H
ROOFLINE_HEADING = "## LinOSS layer training step against the roofline (`benchmarks/scan.py --roofline-only`)"


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


def matmul_rate(n: int = 2048) -> float:
    """FLOP/s of a float32 (n, n) @ (n, n) matmul, best of 5."""
    a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    return 2 * n**3 / best_time(lambda: torch.mm(a, b, out=out), 5)


def training_step_cost(B: int, L: int, H: int) -> tuple[float, float]:
    """(bytes, FLOPs) a LinOSS layer's forward + backward cannot avoid (module docstring)."""
    N = 2 * P
    bytes_ = 5 * 4 * B * L * H + 2 * 8 * B * -(-L // CHECKPOINT) * 2 * N + 2 * 4 * (2 * H * N + 6 * N)
    return bytes_, B * L * (12 * H * N + 32 * N)


def roofline_rows(repeats: int, bw: float, rate: float) -> list[dict]:
    """Training-step time of the layer, fused and unfused, for each H in ROOFLINE_WIDTHS."""
    B, L = ROOFLINE_SIZE
    rows, threshold = [], linoss.FUSED_MAX_CHANNELS
    for H in ROOFLINE_WIDTHS:
        layer = LinOSSLayer(P, H, "damped", scan="numba")
        u = torch.randn(B, L, H, requires_grad=True)

        def fwd_bwd():
            y, _ = layer(u)
            y.backward(torch.ones_like(y))

        row = {"H": H}
        try:
            for key, fused in (("fused", True), ("unfused", False)):
                linoss.FUSED_MAX_CHANNELS = H if fused else 0
                row[key] = best_time(fwd_bwd, repeats)
        finally:
            linoss.FUSED_MAX_CHANNELS = threshold
        bytes_, flops = training_step_cost(B, L, H)
        row["roofline"] = max(bytes_ / bw, flops / rate)
        row["default"] = row["fused" if H <= threshold else "unfused"]
        rows.append(row)
        print(format_roofline_row(row), file=sys.stderr)
    return rows


def format_roofline_row(r: dict) -> str:
    return (f"| {r['H']} | {r['fused'] * 1e3:.1f} | {r['unfused'] * 1e3:.1f} | {r['unfused'] / r['fused']:.2f} | "
            f"{r['roofline'] * 1e3:.1f} | {r['default'] / r['roofline']:.1f} |")  # fmt: skip


def roofline_table(rows: list[dict], bw: float, rate: float) -> str:
    B, L = ROOFLINE_SIZE
    return "\n".join([
        f"LinOSS layer training step (forward + backward) at B = {B}, L = {L}, P = {P}, "
        f"{torch.get_num_threads()} thread(s); copy bandwidth {bw / 1e9:.1f} GB/s, float32 matmul "
        f"{rate / 1e9:.0f} GFLOP/s; the default path is fused for H <= {linoss.FUSED_MAX_CHANNELS}.",
        "",
        "| H | fused ms | unfused ms | unfused / fused | roofline ms | default path / roofline |",
        "|---|---|---|---|---|---|",
        *(format_roofline_row(r) for r in rows),
    ])  # fmt: skip


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
    ap.add_argument("--roofline-only", action="store_true", help="only the layer's training step against the roofline")
    args = ap.parse_args()
    if args.roofline_only:  # its own section, with the provenance of report.Run
        run_ = Run()
        configure_allocator()
        bw, rate = copy_bandwidth(), matmul_rate()
        section = f"{ROOFLINE_HEADING}\n\n" + roofline_table(roofline_rows(args.repeats, bw, rate), bw, rate)
        section = section.replace("\n\n", f"\n\n{run_.provenance()} ", 1) + "\n"
        print(section)
        if args.write:
            write_section(args.write, ROOFLINE_HEADING, section)
        return
    rows, bw = run(args.repeats)
    rate = matmul_rate()
    text = table(rows, bw) + "\n\n" + roofline_table(roofline_rows(args.repeats, bw, rate), bw, rate)
    print(text)
    if args.write:
        commit = git_commit()
        section = (f"## LinOSS scan (`benchmarks/scan.py`)\n\nCommand: `python benchmarks/scan.py --write {args.write}` "
                   f"at commit {commit}, {time.strftime('%Y-%m-%d')}.\nMachine: {describe_machine()}.\n"
                   f"LinOSS layer: D-LinOSS, P = {P}, H = {H}, float32 activations, float64 state.\n\n{text}\n")  # fmt: skip
        write_section(args.write, "## LinOSS scan", section)


if __name__ == "__main__":
    main()
