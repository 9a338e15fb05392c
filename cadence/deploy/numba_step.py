"""The fused LinOSS policy step as one compiled NumPy kernel (numba): the Controller's fastest runtime.

Symbols (as in :mod:`cadence.deploy.step`): O observation dim, A action dim, D = H model width,
P oscillators per layer, nL LinOSS blocks.

A batch-1 step of a 0.5M-parameter LinOSS policy is ~70 PyTorch ops on vectors of a few hundred
entries; each op costs microseconds of dispatch, even traced and frozen by TorchScript, while the
arithmetic is ~0.5 M multiply-adds. :class:`NumbaLinOSSStep` runs the whole step — observation
normalization, the encoder MLP, every block (LayerNorm, input map, oscillator update, readout,
GELU, GLU, residual), the head and the action un-normalization and clipping — as one numba call on
preallocated arrays: no allocation per step, the state double-buffered. It reads the frozen
coefficients of :class:`~cadence.deploy.step.FusedLinOSSBlock`, so the two compute the same
function (the tests compare them); weights and activations are float32, the oscillator state float64.

It covers LinOSS policies whose blocks use ``norm="layer"`` (the policy default);
:func:`numba_step_unsupported` says why any other policy is not covered.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor, nn

from cadence.policies.backbones.base import State

from .step import FusedLinOSSStep, PolicyStep


def numba_step_unsupported(step: PolicyStep) -> str | None:
    """None if :class:`NumbaLinOSSStep` can run ``step``; otherwise the reason, for an error message."""
    if step.image_shape is not None:
        return "the numba runtime takes no camera frames (the policy observes cameras)"
    if not isinstance(step.backbone_step, FusedLinOSSStep):
        kind = f"{step.backbone_kind} {step.policy.cfg.backbone}"
        return f"the numba runtime runs fused LinOSS steps only, not a {kind} step"
    if not all(isinstance(b.norm, nn.LayerNorm) for b in step.backbone_step.blocks):
        return "the numba runtime supports LinOSS blocks with norm='layer' only"
    try:
        import numba  # noqa: F401
    except ImportError as e:  # pragma: no cover - numba is a dependency
        return f"numba is not importable ({e})"
    return None


@functools.cache
def _kernel():
    """Compile (once, cached on disk) and return the step kernel."""
    import numba

    @numba.njit(cache=True, nogil=True, inline="always")
    def matvec_add(x, W, out):  # out (N,) += x (M,) @ W (M, N); W row-major, so the inner loop is contiguous
        for i in range(W.shape[0]):
            xi = x[i]
            for j in range(W.shape[1]):
                out[j] += xi * W[i, j]

    @numba.njit(cache=True, nogil=True, inline="always")
    def linear(x, W, b, out):  # out (N,) = x (M,) @ W (M, N) + b
        out[:] = b
        matvec_add(x, W, out)

    @numba.njit(cache=True, nogil=True, inline="always")
    def layer_norm(x, w, b, eps, out):  # out (D,) = (x − mean) / √(var + eps) · w + b, statistics in float64
        mean = 0.0
        for i in range(x.shape[0]):
            mean += x[i]
        mean /= x.shape[0]
        var = 0.0
        for i in range(x.shape[0]):
            var += (x[i] - mean) ** 2
        r = 1.0 / math.sqrt(var / x.shape[0] + eps)
        for i in range(x.shape[0]):
            out[i] = (x[i] - mean) * r * w[i] + b[i]

    @numba.njit(cache=True, nogil=True)
    def policy_step(obs, s_in, s_out, action, obs_mean, obs_std, enc_W0, enc_b0, enc_W, enc_b,
                    ln_w, ln_b, ln_eps, B_map, a, b, f, C_map, D, glu_W, glu_b,
                    head_w, head_b, head_eps, head_W, head_bias, act_mean, act_std, low, high,
                    x, u, bu, gv):  # fmt: skip
        """One step: obs (O,) and s_in (nL, 2, 2P) -> action (A,) and s_out (nL, 2, 2P); x, u (D,),
        bu (2P,), gv (2D,) are scratch. Block weights are stacked on a leading nL axis."""
        H, P2 = x.shape[0], bu.shape[0]
        for i in range(obs.shape[0]):
            obs[i] = (obs[i] - obs_mean[i]) / obs_std[i]
        linear(obs, enc_W0, enc_b0, x)
        for n in range(enc_W.shape[0]):  # GELU (exact) between encoder layers
            for i in range(H):
                u[i] = 0.5 * x[i] * (1.0 + math.erf(x[i] / math.sqrt(2.0)))
            linear(u, enc_W[n], enc_b[n], x)
        for n in range(ln_w.shape[0]):
            layer_norm(x, ln_w[n], ln_b[n], ln_eps, u)
            bu[:] = 0.0
            matvec_add(u, B_map[n], bu)  # Bu (2P,)
            for c in range(P2):  # s' = a ⊙ s + b ⊙ flip(s) + f ⊙ Bu, float64
                z, q = s_in[n, 0, c], s_in[n, 1, c]
                s_out[n, 0, c] = a[n, 0, c] * z + b[n, 0, c] * q + f[n, 0, c] * bu[c]
                s_out[n, 1, c] = a[n, 1, c] * q + b[n, 1, c] * z + f[n, 1, c] * bu[c]
            for c in range(P2):  # positions x in float32, into bu (no longer needed)
                bu[c] = s_out[n, 1, c]
            for j in range(H):  # h = Re(C x) + D ⊙ u, into u
                u[j] *= D[n, j]
            matvec_add(bu, C_map[n], u)
            for j in range(H):  # GELU (tanh)
                h = u[j]
                u[j] = 0.5 * h * (1.0 + math.tanh(0.7978845608028654 * (h + 0.044715 * h * h * h)))
            linear(u, glu_W[n], glu_b[n], gv)  # [value; gate] (2D,)
            for j in range(H):
                x[j] += gv[j] / (1.0 + math.exp(-gv[H + j]))
        layer_norm(x, head_w, head_b, head_eps, u)
        linear(u, head_W, head_bias, action)
        for k in range(action.shape[0]):
            action[k] = min(max(action[k] * act_std[k] + act_mean[k], low[k]), high[k])

    return policy_step


def _f32(t: Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


def _weight(linear: nn.Linear) -> np.ndarray:
    """(in, out) float32: x @ W + b, row-major."""
    return _f32(linear.weight.T)


class NumbaLinOSSStep:
    """A fused LinOSS :class:`PolicyStep` as a numba kernel with its own state: obs (O,) -> action (A,).

    Same contract as the Controller's PyTorch runtime: ``reset(state=None)``, ``state`` (a copy, in the
    layout and dtype of ``step.initial_state(1)``), ``__call__(obs)``. The returned action is a view of
    a buffer that the next call overwrites.
    """

    def __init__(self, step: PolicyStep):
        reason = numba_step_unsupported(step)
        if reason:
            raise ValueError(reason)
        p, blocks = step.policy, step.backbone_step.blocks
        encoder = [m for m in p.encoder if isinstance(m, nn.Linear)]
        if len({blk.norm.eps for blk in blocks}) != 1:
            raise ValueError("the numba runtime needs one LayerNorm eps for all LinOSS blocks")

        def stack(get) -> np.ndarray:  # one array per block -> (nL, ...)
            return np.ascontiguousarray(np.stack([get(blk) for blk in blocks]))

        D = encoder[0].out_features
        self._params = (
            _f32(p.obs_norm.mean), _f32(p.obs_norm.std),
            _weight(encoder[0]), _f32(encoder[0].bias),
            np.zeros((0, D, D), np.float32) if len(encoder) == 1 else np.stack([_weight(m) for m in encoder[1:]]),
            np.zeros((0, D), np.float32) if len(encoder) == 1 else np.stack([_f32(m.bias) for m in encoder[1:]]),
            stack(lambda blk: _f32(blk.norm.weight)), stack(lambda blk: _f32(blk.norm.bias)), float(blocks[0].norm.eps),
            stack(lambda blk: _f32(blk.B_map)),
            *(stack(lambda blk, k=k: getattr(blk, k).double().numpy()) for k in ("a", "b", "f")),
            stack(lambda blk: _f32(blk.C_map)), stack(lambda blk: _f32(blk.D)),
            stack(lambda blk: _weight(blk.glu)), stack(lambda blk: _f32(blk.glu.bias)),
            _f32(p.head.norm.weight), _f32(p.head.norm.bias), float(p.head.norm.eps),
            _weight(p.head.mean), _f32(p.head.mean.bias),
            _f32(p.action_norm.mean), _f32(p.action_norm.std), _f32(p.action_low), _f32(p.action_high),
        )  # fmt: skip
        self._initial_state = step.initial_state(1)
        n_blocks, P2 = len(blocks), blocks[0].a.shape[1]
        self._states = np.zeros((2, n_blocks, 2, P2))  # double buffer: read one, write the other
        self._current = 0
        self._obs = np.zeros(step.obs_dim, np.float32)  # normalized in place by the kernel
        self._action = np.zeros(step.act_dim, np.float32)
        self._work = (np.zeros(D, np.float32), np.zeros(D, np.float32), np.zeros(P2, np.float32),
                      np.zeros(2 * D, np.float32))  # fmt: skip
        self._step = _kernel()

    @property
    def state(self) -> State:
        """A copy of the state after the last call: one (1, 2, 2P) tensor per block."""
        s = self._states[self._current]
        return tuple(torch.from_numpy(s[n : n + 1].copy()).to(init.dtype) for n, init in enumerate(self._initial_state))

    def reset(self, state: State | None = None) -> None:
        """Zero state, or a copy of ``state`` (batch 1, shapes checked by the caller)."""
        self._current = 0
        for n, s in enumerate(state if state is not None else self._initial_state):
            self._states[0, n] = s[0].detach().cpu().double().numpy()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """obs (O,) float32 -> action (A,) float32 in environment units (a reused buffer)."""
        self._obs[:] = obs
        nxt = 1 - self._current
        self._step(self._obs, self._states[self._current], self._states[nxt], self._action, *self._params, *self._work)
        self._current = nxt
        return self._action
