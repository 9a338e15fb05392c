"""The oscillators' spectrum as a first-class object: which rhythms a LinOSS policy uses.

``spectrum(policy)`` returns, for every LinOSS layer and mode, the natural frequency in Hz (through
the task's control period), the decay time constant in seconds and |λ|, and each mode's input gain
‖B_k‖ (norm of its row of B) and output gain ‖C_k‖ (norm of its column of C), so that modes that
matter can be told from modes that are switched off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .policies.backbones.linoss import LinOSSLayer
from .policies.backbones.linoss_init import layer_spectrum


@dataclass
class LayerSpectrum:
    """Per-mode arrays (P,) of one LinOSS layer."""

    layer: int
    frequency_hz: np.ndarray
    tau_s: np.ndarray
    radius: np.ndarray
    input_gain: np.ndarray
    output_gain: np.ndarray

    def summary(self) -> str:
        f = self.frequency_hz
        weight = self.input_gain * self.output_gain
        top = np.argsort(-weight)[:3]
        return (f"layer {self.layer}: {len(f)} modes, frequency {np.percentile(f, 10):.2f}–{np.percentile(f, 90):.2f} Hz "
                f"(10–90%), median |λ| {np.median(self.radius):.4f}, strongest modes at "
                + ", ".join(f"{f[k]:.2f} Hz" for k in top))  # fmt: skip


@torch.no_grad()
def spectrum(model: nn.Module, control_period: float | None = None) -> list[LayerSpectrum]:
    """Spectra of the LinOSS layers inside ``model`` (a policy or a backbone), first to last.

    ``control_period`` defaults to the policy's own (``model.control_period``).
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
