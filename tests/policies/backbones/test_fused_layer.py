"""The fused LinOSS layer kernel computes the unfused layer (scan of u B̃, then readout C̃) and its exact gradients."""

import pytest
import torch

from cadence.policies.backbones import linoss
from cadence.policies.backbones.fused_layer import CHECKPOINT, fused_layer
from cadence.policies.backbones.linoss import VARIANTS, LinOSSLayer
from cadence.policies.backbones.scan import Transition, scan_loop

pytest.importorskip("numba")


def inputs(B=2, L=2 * CHECKPOINT + 6, P=3, H=2, seed=0):
    """float64 u (B, L, H), coefficients (2P,) of a stable IM transition, B̃ (H, 2P), C̃ (2P, H), z0, x0 (B, 2P)
    non-zero, all requiring grad; and keep (B, L) with resets (one at step 0, one on a checkpoint boundary)."""
    g = torch.Generator().manual_seed(seed)
    A, dt = torch.rand(P, generator=g, dtype=torch.float64), torch.rand(P, generator=g, dtype=torch.float64) * 0.5 + 0.3
    S = 1 / (1 + dt**2 * A)
    coefs = [c.repeat_interleave(2) for c in (1 - dt**2 * A * S, -dt * A * S, dt * S, S, dt * S, dt**2 * S)]
    u = torch.randn(B, L, H, generator=g, dtype=torch.float64)
    maps = (torch.randn(H, 2 * P, generator=g, dtype=torch.float64),
            torch.randn(2 * P, H, generator=g, dtype=torch.float64))  # fmt: skip
    z0, x0 = torch.randn(2, B, 2 * P, generator=g, dtype=torch.float64)
    keep = (torch.rand(B, L, generator=g) > 0.1).double()
    keep[0, 0] = keep[1, CHECKPOINT] = 0.0
    return [a.requires_grad_() for a in (u, *coefs, *maps, z0, x0)], keep


def call(fn, args, keep):
    u, coefs, (B_map, C_map, z0, x0) = args[0], Transition(*args[1:7]), args[7:]
    return fn(u, coefs, B_map, C_map, z0, x0, keep)


def assert_close_to_scale(actual, expected, tol=1e-5, msg=None):
    """|a − b| ≤ tol · max(1, max|b|): float32 resolution at the tensor's own scale (the gradients of slow
    oscillators reach 1e5)."""
    torch.testing.assert_close(actual, expected, atol=tol * max(1.0, expected.abs().max().item()), rtol=0, msg=msg)


def unfused(u, t, B_map, C_map, z0, x0, keep):
    xs, z, x = scan_loop(u @ B_map, t, z0, x0, keep)
    return xs @ C_map, z, x


@pytest.mark.parametrize("with_resets", [False, True])
def test_fused_layer_gradcheck_over_several_checkpoints(with_resets):
    args, keep = inputs()
    keep = keep if with_resets else None
    assert torch.autograd.gradcheck(lambda *a: call(fused_layer, a, keep), args)


def test_fused_layer_equals_the_unfused_layer_with_more_channels_than_one_block_of_four():
    """H = 6 runs both the four-at-a-time and the remainder loops of the maps; L = 3 blocks + 1 step."""
    args, keep = inputs(B=3, L=3 * CHECKPOINT + 1, P=5, H=6, seed=1)
    outs = [call(fn, args, keep) for fn in (fused_layer, unfused)]
    weights = [torch.randn_like(o) for o in outs[0]]
    grads = [torch.autograd.grad(sum((o * w).sum() for o, w in zip(out, weights)), args) for out in outs]
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-11, rtol=1e-11)


@pytest.mark.parametrize("variant", VARIANTS)
def test_layer_fused_path_equals_unfused_path_and_its_parameter_gradients(variant, monkeypatch):
    layer = LinOSSLayer(8, 4, variant, scan="numba", generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    u = torch.randn(3, 150, 4, generator=g)
    state = 0.1 * torch.randn(3, 2, 16, dtype=torch.float64, generator=g)
    resets = torch.zeros(3, 150, dtype=torch.bool)
    resets[0, 0] = resets[1, 64] = resets[2, 100] = True
    results = []
    for threshold in (4, 0):  # the fused path, then the unfused one
        monkeypatch.setattr(linoss, "FUSED_MAX_CHANNELS", threshold)
        layer.zero_grad()
        y, final = layer(u, state, resets)
        (y.square().sum() + final.sum()).backward()
        results.append((y, final, {n: p.grad.clone() for n, p in layer.named_parameters()}))
    (y_f, s_f, g_f), (y_u, s_u, g_u) = results
    assert_close_to_scale(y_f, y_u)
    assert_close_to_scale(s_f, s_u)
    assert g_f.keys() == g_u.keys()
    for name in g_f:
        assert_close_to_scale(g_f[name], g_u[name], msg=lambda m: f"d{name}: {m}")


def test_the_fused_path_is_taken_and_its_forward_equals_repeated_step(monkeypatch):
    layer = LinOSSLayer(8, 4, "imex", scan="numba", generator=torch.Generator().manual_seed(0))
    calls = []
    monkeypatch.setattr(linoss, "fused_layer", lambda *a: calls.append(1) or fused_layer(*a))
    g = torch.Generator().manual_seed(2)
    u, state = torch.randn(2, 100, 4, generator=g), 0.1 * torch.randn(2, 2, 16, dtype=torch.float64, generator=g)
    with torch.no_grad():
        y, final = layer(u, state)
        s, ys = state, []
        for n in range(u.shape[1]):
            y_n, s = layer.step(u[:, n], s)
            ys.append(y_n)
    assert calls == [1]
    assert_close_to_scale(torch.stack(ys, 1), y)
    assert_close_to_scale(s, final)  # step forms u B̃ in float32, the kernel in float64
