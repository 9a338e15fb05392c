"""MLP: the frame stack is the last k inputs, zero-padded at the start of every episode."""

import pytest
import torch

from cadence.policies.backbones import make_backbone

D = 8


@pytest.mark.parametrize("k", [1, 4])
def test_frame_stack_is_the_last_k_inputs_zero_padded_per_episode(k):
    bb = make_backbone("mlp", d_model=D, n_layers=2, frame_stack=k).eval()
    x = torch.randn(2, 12, D)
    resets = torch.zeros(2, 12, dtype=torch.bool)
    resets[0, 5] = True
    with torch.no_grad():
        y, (past,) = bb(x, None, resets)
        for b, start in ((0, 5), (1, 0)):
            for t in range(12):
                lo = start if t >= start else 0
                frames = [x[b, s] if s >= lo else torch.zeros(D) for s in range(t - k + 1, t + 1)]
                h = bb.embed(torch.cat(frames))
                for block in bb.blocks:
                    h = block(h)
                torch.testing.assert_close(y[b, t], bb.norm(h), atol=1e-6, rtol=0)
    torch.testing.assert_close(past, x[:, 12 - (k - 1) :], atol=0, rtol=0)
