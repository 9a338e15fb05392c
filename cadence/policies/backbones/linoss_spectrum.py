"""The oscillators' spectrum as a first-class object: which rhythms a LinOSS policy uses.

References: [LinOSS] Rusch & Rus, "Oscillatory State-Space Models", ICLR 2025, arXiv:2410.03943;
[D-LinOSS] Boyer, Rusch & Rus, "Learning to Dissipate Energy in Oscillatory State-Space Models",
arXiv:2505.12171 (section numbers of v1).

``spectrum(policy)`` returns, for every LinOSS layer and mode, the natural frequency in Hz (through the
task's control period), the decay time constant in seconds and |λ| of the dominant eigenvalue of the
mode's transition M (:func:`~.linoss_init.layer_spectrum`): M^IM of [LinOSS] eqs. 3–4 (eigenvalues in
§3.1, Proposition 3.1: |λ| ≤ 1), M^IMEX of [LinOSS] eq. 6 (|λ| = 1 while Δt² A ≤ 4: §3.1, Remark 1 and
App. Proposition E.1) and D-LinOSS's M of [D-LinOSS] §2.2, eq. 5 (eigenvalues and |λ| in §3.1,
Propositions 3.1–3.2). It also returns each mode's input gain ‖B_k‖ (norm of its row of B) and output gain
‖C_k‖ (norm of its column of C), B (P, H) and C (H, P) as in [LinOSS] eq. 1 (B ∈ ℝ^{m×p}, C ∈ ℝ^{q×m}) but
complex, stored as (re, im) pairs like the official code's (tk-rusch/linoss, ``models/LinOSS.py``), so
that modes that matter can be told from modes that are switched off. ``spectrum_table`` prints it.

Symbols: P modes per layer, H layer width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .linoss import LinOSSLayer
from .linoss_init import layer_spectrum


@dataclass
class LayerSpectrum:
    """Per-mode arrays (P,) of one LinOSS layer."""

    layer: int
    frequency_hz: np.ndarray
    """Natural frequency θ / (2π dt_env) of the dominant eigenvalue r·e^{iθ}, Hz."""
    tau_s: np.ndarray
    """Decay time constant −dt_env / ln r, seconds (inf for |λ| = 1)."""
    radius: np.ndarray
    """|λ| of the dominant eigenvalue (per-step decay factor)."""
    input_gain: np.ndarray
    """‖B_k‖, the norm of mode k's row of B (how strongly the inputs drive it)."""
    output_gain: np.ndarray
    """‖C_k‖, the norm of mode k's column of C (how strongly it reaches the output)."""

    @property
    def weight(self) -> np.ndarray:
        """(P,) input gain × output gain: how much mode k can carry from the layer's input to its output."""
        return self.input_gain * self.output_gain

    def remembering(self, gap_s: float) -> float:
        """The fraction of modes whose half-life τ·ln 2 exceeds ``gap_s`` seconds: those that keep more than
        half of what they saw across that gap (the memory tasks' delay)."""
        return float(np.mean(self.tau_s * np.log(2) > gap_s))

    def strongest(self, n: int = 3) -> np.ndarray:
        """Indices of the ``n`` modes of largest :attr:`weight`, strongest first."""
        return np.argsort(-self.weight)[:n]

    def summary(self) -> str:
        f = self.frequency_hz
        return (f"layer {self.layer}: {len(f)} modes, frequency {np.percentile(f, 10):.2f}–{np.percentile(f, 90):.2f} Hz "
                f"(10–90%), median |λ| {np.median(self.radius):.4f}, strongest modes at "
                + ", ".join(f"{f[k]:.2f} Hz" for k in self.strongest()))  # fmt: skip


@torch.no_grad()
def spectrum(model: nn.Module, control_period: float | None = None) -> list[LayerSpectrum]:
    """Spectra of the LinOSS layers inside ``model`` (a policy or a backbone), first to last.

    ``control_period`` (seconds per step) defaults to the policy's own (``model.control_period``).
    """
    dt = control_period or getattr(model, "control_period", None)
    if not dt:
        raise ValueError("the control period is unknown: pass control_period=env.unwrapped.dt")
    layers = [m for m in model.modules() if isinstance(m, LinOSSLayer)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no LinOSS layer; spectra exist for backbone 'linoss' only")
    out = []
    for i, layer in enumerate(layers):
        s = layer_spectrum(layer, dt)
        out.append(LayerSpectrum(
            layer=i,
            frequency_hz=s["frequency_hz"].numpy(),
            tau_s=s["tau_s"].numpy(),
            radius=s["radius"].numpy(),
            input_gain=layer.B.detach().flatten(1).norm(dim=1).double().numpy(),  # B (P, H, 2): row k
            output_gain=layer.C.detach().transpose(0, 1).flatten(1).norm(dim=1).double().numpy(),  # C (H, P, 2): column k
        ))  # fmt: skip
    return out


def spectrum_table(after: Sequence[LayerSpectrum], before: Sequence[LayerSpectrum] | None = None) -> str:
    """A plain-text table, one row per layer: frequency quantiles, median τ and |λ|, the strongest modes
    and (with ``before``, the same layers at initialization) how far the frequencies moved in training."""
    head = f"{'layer':>5} {'modes':>5} {'f 10%':>7} {'f 50%':>7} {'f 90%':>7} {'τ med':>7} {'|λ| med':>8}  "
    head += ("median |Δf|/f  " if before is not None else "") + "strongest modes (Hz, ‖B‖·‖C‖)"
    rows = [head, "-" * len(head)]
    for i, s in enumerate(after):
        f10, f50, f90 = np.percentile(s.frequency_hz, [10, 50, 90])
        row = (f"{s.layer:>5} {len(s.frequency_hz):>5} {f10:>7.3f} {f50:>7.3f} {f90:>7.3f} "
               f"{np.median(s.tau_s):>6.2f}s {np.median(s.radius):>8.4f}  ")  # fmt: skip
        if before is not None:
            f0 = before[i].frequency_hz
            row += f"{np.median(np.abs(s.frequency_hz - f0) / np.maximum(f0, 1e-12)):>13.1%}  "
        row += ", ".join(f"{s.frequency_hz[k]:.2f} ({s.weight[k]:.2f})" for k in s.strongest())
        rows.append(row)
    return "\n".join(rows)
