"""The selective scan: every method computes the recurrence and its readout, with resets, and their gradients."""

import pytest
import torch

from cadence.policies.backbones.selective_scan import CHECKPOINT, SELECTIVE_SCANS, selective_scan

METHODS = [m for m in SELECTIVE_SCANS if m != "auto"]


def inputs(B=2, L=13, ED=3, N=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    u, delta = torch.randn(B, L, ED, generator=g, dtype=dtype), torch.rand(B, L, ED, generator=g, dtype=dtype)
    A = -torch.rand(ED, N, generator=g, dtype=dtype) - 0.1
    Bs, Cs = torch.randn(B, L, N, generator=g, dtype=dtype), torch.randn(B, L, N, generator=g, dtype=dtype)
    h0 = torch.randn(B, ED, N, generator=g, dtype=dtype)
    keep = (torch.rand(B, L, generator=g) > 0.2).to(dtype)  # zeros: episode starts
    return u, delta, A, Bs, Cs, h0, keep


def recurrence(u, delta, A, Bs, Cs, h0, keep):
    """The module docstring's equations, written out step by step."""
    h, ys = h0, []
    for t in range(u.shape[1]):
        a = keep[:, t, None, None] * torch.exp(delta[:, t, :, None] * A)
        h = a * h + (delta[:, t] * u[:, t])[:, :, None] * Bs[:, t, None, :]
        ys.append((h * Cs[:, t, None, :]).sum(-1))
    return torch.stack(ys, 1), h


@pytest.mark.parametrize("method", METHODS)
def test_every_method_computes_the_recurrence_and_its_gradients(method):
    args = [a.requires_grad_() for a in inputs()[:-1]] + [inputs()[-1]]
    y, h = selective_scan(*args, method=method)
    y_ref, h_ref = recurrence(*args)
    torch.testing.assert_close(y, y_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(lambda *a: selective_scan(*a, args[-1], method=method), args[:-1])


def test_the_numba_backward_across_checkpoints_without_resets_matches_autograd():
    """A sequence several checkpoint blocks long (the last one partial), in float32 as Mamba trains."""
    args = [a.requires_grad_() for a in inputs(B=3, L=3 * CHECKPOINT + 5, ED=40, N=16, dtype=torch.float32)[:-1]]
    outs = [selective_scan(*args, None, method=m) for m in ("numba", "loop")]
    w_y, w_h = torch.randn_like(outs[0][0]), torch.randn_like(outs[0][1])
    grads = [torch.autograd.grad((y * w_y).sum() + (h * w_h).sum(), args) for y, h in outs]
    for (a, b), name in zip(zip(*grads), ("u", "delta", "A", "B", "C", "h0")):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=lambda m: f"d{name}: {m}")
    torch.testing.assert_close(outs[0][0], outs[1][0], atol=1e-5, rtol=1e-5)


def test_no_gradient_no_saved_state_and_bad_methods_refused():
    with torch.no_grad():
        y, h = selective_scan(*inputs(), method="numba")
    assert not y.requires_grad and y.shape == (2, 13, 3) and h.shape == (2, 3, 4)
    with pytest.raises(ValueError, match="selective scan 'cuda' is not one of"):
        selective_scan(*inputs(), method="cuda")
    if not torch.cuda.is_available():
        pytest.skip("the CUDA refusal needs a GPU")
    with pytest.raises(ValueError, match="runs on the CPU only"):
        selective_scan(*(a.cuda() for a in inputs()), method="numba")
