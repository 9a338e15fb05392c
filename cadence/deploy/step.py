"""One control step as a module with explicit state in and out: the unit that is run, timed and exported.

Symbols (as in :mod:`cadence.policies.policy`): B batch, O observation dim, A action dim, D model
width; LinOSS: H = D channels, P oscillators per layer.

:class:`PolicyStep` is ``SequencePolicy.step`` with a flat signature,

    forward(obs (B, O), *state) -> (action (B, A), *new_state)
    forward(obs (B, O), images (B, C, H, W) uint8, *state) -> ...      (a policy that observes cameras)

observation normalization, encoder, backbone, head, action un-normalization and clipping included,
so that ``torch.jit.trace`` and ``torch.onnx.export`` see plain tensors in and out. The backbone
part is a *backbone step*, ``forward(x (B, D), *state) -> (y (B, D), *new_state)``: by default
:class:`GenericBackboneStep` (the backbone's own ``step``), or a fused single-step kernel
registered for that backbone name in :data:`FUSED_STEPS`. A fused step computes the same function
with the same state layout, so states and checkpoints are interchangeable between the two.

The LinOSS fused step (:class:`FusedLinOSSStep`) evaluates the layer's constrained, discretized
coefficients once, at construction, instead of on every call (``LinOSSLayer.step`` rebuilds them
from the raw parameters each time), and merges the two GLU matmuls into one. The state stays in the
layer's ``state_dtype`` (float64 by default; see :mod:`cadence.policies.backbones.linoss`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cadence.policies.backbones.base import State
from cadence.policies.backbones.linoss import LinOSSBackbone, LinOSSBlock
from cadence.policies.policy import SequencePolicy


class GenericBackboneStep(nn.Module):
    """Any backbone's ``step`` with a flat signature: x (B, D), *state -> (y (B, D), *state)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        y, new_state = self.backbone.step(x, tuple(state))
        return (y, *new_state)


class FusedLinOSSBlock(nn.Module):
    """One :class:`LinOSSBlock` with frozen coefficients. x (B, H), s (B, 2, 2P) -> (x (B, H), s).

    The state s holds [z; x] (velocity, position) of 2P real channels, as ``LinOSSLayer``. With
    a = [m11; m22], b = [m12; m21], f = [f1; f2] (each (2, 2P)), the layer update
    z' = m11 z + m12 x + f1 Bu, x' = m21 z + m22 x + f2 Bu is  s' = a ⊙ s + b ⊙ flip(s) + f ⊙ Bu.
    """

    def __init__(self, block: LinOSSBlock):
        super().__init__()
        layer = block.layer
        with torch.no_grad():
            t, B_map, C_map = layer._io()
            self.register_buffer("a", torch.stack([t.m11, t.m22]))  # (2, 2P), state dtype
            self.register_buffer("b", torch.stack([t.m12, t.m21]))
            self.register_buffer("f", torch.stack([t.f1, t.f2]))
            self.register_buffer("B_map", B_map.clone())  # (H, 2P)
            self.register_buffer("C_map", C_map.contiguous())  # (2P, H)
            self.register_buffer("D", layer.D.clone())  # (H,)
            H = layer.hidden_dim
            self.glu = nn.Linear(H, 2 * H)  # [w1; w2]: one matmul for both GLU branches
            self.glu.weight.copy_(torch.cat([block.glu.w1.weight, block.glu.w2.weight]))
            self.glu.bias.copy_(torch.cat([block.glu.w1.bias, block.glu.w2.bias]))
        self.norm = block.norm

    def forward(self, x: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        u = self.norm(x)  # (B, H)
        forcing = self.f * (u @ self.B_map).unsqueeze(1)  # (B, 1, 2P) -> (B, 2, 2P), state dtype
        s = torch.addcmul(torch.addcmul(forcing, self.a, s), self.b, s.flip(1))
        h = torch.addmm(self.D * u, s[:, 1].to(x.dtype), self.C_map)  # Re(C x) + D ⊙ u, (B, H)
        value, gate = self.glu(F.gelu(h, approximate="tanh")).chunk(2, dim=-1)
        return x + value * torch.sigmoid(gate), s


class FusedLinOSSStep(nn.Module):
    """:class:`LinOSSBackbone` step from frozen coefficients: x (B, H), *state (B, 2, 2P) per block."""

    def __init__(self, backbone: LinOSSBackbone):
        super().__init__()
        self.blocks = nn.ModuleList(FusedLinOSSBlock(b) for b in backbone.blocks)

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        new_state = []
        for block, s in zip(self.blocks, state):
            x, s = block(x, s)
            new_state.append(s)
        return (x, *new_state)


FUSED_STEPS: dict[str, Callable[[nn.Module], nn.Module]] = {"linoss": FusedLinOSSStep}
"""Backbone name -> constructor of its fused backbone step (same state layout as ``backbone.step``)."""


class PolicyStep(nn.Module):
    """``SequencePolicy.step`` as obs (B, O), *state -> (action (B, A), *state), env units in and out.

    Holds a frozen copy of ``policy`` (eval mode, no gradients); the caller's policy is not changed.
    ``fused=True`` uses the backbone's entry in :data:`FUSED_STEPS` when there is one; ``backbone_kind``
    says which step was chosen ("fused" or "generic").
    """

    def __init__(self, policy: SequencePolicy, fused: bool = True):
        super().__init__()
        self.policy = copy.deepcopy(policy)
        make = FUSED_STEPS.get(policy.cfg.backbone) if fused else None
        self.backbone_kind = "fused" if make else "generic"
        self.backbone_step = (make or GenericBackboneStep)(self.policy.backbone)
        self.eval().requires_grad_(False)

    @property
    def obs_dim(self) -> int:
        return self.policy.obs_dim

    @property
    def act_dim(self) -> int:
        return self.policy.act_dim

    def initial_state(self, batch_size: int = 1) -> State:
        return self.policy.initial_state(batch_size)

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """(C, H, W) of the camera frames the step takes after ``obs``; None: state only."""
        return self.policy.image_shape

    def example_inputs(self, batch_size: int = 1) -> tuple[Tensor, ...]:
        """(obs zeros (B, O), [images zeros (B, C, H, W) uint8,] *initial state): inputs for tracing and export."""
        low = self.policy.action_low
        images = () if self.image_shape is None else (torch.zeros(batch_size, *self.image_shape, dtype=torch.uint8,
                                                                  device=low.device),)  # fmt: skip
        return (low.new_zeros(batch_size, self.obs_dim), *images, *self.initial_state(batch_size))

    def forward(self, obs: Tensor, *inputs: Tensor) -> tuple[Tensor, ...]:
        p = self.policy
        images, state = (None, inputs) if self.image_shape is None else (inputs[0], inputs[1:])
        h, *new_state = self.backbone_step(p.encode(obs, images), *state)
        return (p.to_env_action(p.head(h)), *new_state)
