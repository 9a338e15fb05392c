"""GRU: the state is nn.GRU's hidden state, batch-first; resets split the sequence correctly."""

import torch

from cadence.policies.backbones import make_backbone

D = 16


def test_state_is_the_hidden_state_of_every_layer_batch_first():
    bb = make_backbone("gru", d_model=D, n_layers=3).eval()
    x, h0 = torch.randn(2, 20, D), torch.randn(2, 3, D)
    with torch.no_grad():
        y, (h,) = bb(x, (h0,))
        y_ref, h_ref = bb.gru(x, h0.transpose(0, 1).contiguous())
    torch.testing.assert_close(y, y_ref, atol=0, rtol=0)
    torch.testing.assert_close(h, h_ref.transpose(0, 1), atol=0, rtol=0)
    torch.testing.assert_close(h[:, -1], y[:, -1], atol=0, rtol=0)  # the top layer is the output


def test_resets_at_every_step_equal_a_memoryless_map():
    """With every step a reset, each output is the GRU applied once to a zero state."""
    bb = make_backbone("gru", d_model=D, n_layers=2).eval()
    x = torch.randn(3, 15, D)
    with torch.no_grad():
        y, _ = bb(x, (torch.randn(3, 2, D),), torch.ones(3, 15, dtype=torch.bool))
        y_ref, _ = bb(x.reshape(45, 1, D))
    torch.testing.assert_close(y, y_ref.reshape(3, 15, D), atol=1e-6, rtol=0)
