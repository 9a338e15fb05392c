"""Transformer: blocked band attention = plain masked attention, a sliding window of fixed depth, no absolute
time in the state, and the documented behaviour of ``step_mode="window"``."""

import math

import pytest
import torch

from cadence.policies.backbones import make_backbone
from cadence.policies.backbones.transformer import band_attention, band_mask, rope_tables, rotate

D, K = 16, 6
C = K - 1


def transformer(**kw):
    return make_backbone("transformer", d_model=D, **({"n_layers": 2, "context": K} | kw)).double().eval()


def reference_attention(q, k, v, count, resets):
    """Softmax attention over [cache, new] with an explicit (C + L)² mask and RoPE at absolute positions."""
    B, nh, L, hd = q.shape
    episode = torch.full((B, C + L), -1)
    for b in range(B):
        episode[b, C - int(count[b]) : C] = 0
        e = 0
        for t in range(L):
            e += int(resets[b, t])
            episode[b, C + t] = e
    cos, sin = rope_tables(C + L, hd, 10000.0)
    q = rotate(q, cos[C:], sin[C:])
    k = rotate(k, cos, sin)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)  # (B, nh, L, C + L)
    pos_q, pos_k = torch.arange(C, C + L)[:, None], torch.arange(C + L)
    visible = (pos_q - pos_k >= 0) & (pos_q - pos_k < K) & (episode[:, C:, None] == episode[:, None, :])
    scores = scores.masked_fill(~visible[:, None], float("-inf"))
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("L", [1, 4, K, 2 * K + 3, 40])
def test_band_attention_equals_plain_masked_attention(L):
    B, nh, hd = 3, 2, 8
    q = torch.randn(B, nh, L, hd, dtype=torch.float64)
    k, v = torch.randn(2, B, nh, C + L, hd, dtype=torch.float64).unbind(0)
    count = torch.tensor([0, 2, C])
    resets = torch.rand(B, L) < 0.15
    mask, _ = band_mask(count, resets, L, K)
    cos, sin = rope_tables(2 * K - 1, hd, 10000.0)
    y = band_attention(q, k, v, mask, cos, sin, 0.0)
    torch.testing.assert_close(y, reference_attention(q, k, v, count, resets), atol=1e-12, rtol=0)


@pytest.mark.parametrize("context", [1, K])
def test_output_depends_on_exactly_the_last_n_layers_times_C_plus_1_inputs(context):
    """The sliding window of a 2-layer model reaches 2·C steps back, wherever t is (relative positions)."""
    bb = transformer(context=context)
    reach = 2 * (context - 1) + 1
    x = torch.randn(2, 300, D, dtype=torch.float64)
    with torch.no_grad():
        y, _ = bb(x)
        for t in (reach - 1, 150, 299):
            y_t, _ = bb(x[:, t + 1 - reach : t + 1])
            torch.testing.assert_close(y_t[:, -1], y[:, t], atol=1e-12, rtol=0)
            if reach > 1:
                y_short, _ = bb(x[:, t + 2 - reach : t + 1])
                assert (y_short[:, -1] - y[:, t]).abs().max() > 1e-3  # one input fewer changes the output


def test_state_after_a_long_episode_holds_no_absolute_time():
    """After 6000 steps the cache equals that of a fresh run over the last 2·C inputs: nothing grows with t."""
    bb = transformer()
    x = torch.randn(2, 6000, D, dtype=torch.float64)
    with torch.no_grad():
        state = None
        for chunk in x.split(1000, dim=1):
            _, state = bb(chunk, state)
        _, fresh = bb(x[:, -2 * C :])
    assert state[2].tolist() == [C, C]
    for a, b in zip(state, fresh):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_window_mode_steps_like_kv_cache_until_the_window_is_full(n_layers):
    kv = transformer(n_layers=n_layers)
    window = transformer(n_layers=n_layers, step_mode="window")
    window.load_state_dict(kv.state_dict())
    x = torch.randn(2, 30, D, dtype=torch.float64)
    with torch.no_grad():
        y_kv, y_win = [], []
        s_kv, s_win = kv.initial_state(2), window.initial_state(2)
        for t in range(30):
            y, s_kv = kv.step(x[:, t], s_kv)
            y_kv.append(y)
            y, s_win = window.step(x[:, t], s_win)
            y_win.append(y)
        y_kv, y_win = torch.stack(y_kv, 1), torch.stack(y_win, 1)
        torch.testing.assert_close(window(x)[0], y_kv, atol=1e-12, rtol=0)  # forward from zero: one function
        resets = torch.rand(2, 30) < 0.2
        torch.testing.assert_close(window(x, None, resets)[0], kv(x, None, resets)[0], atol=1e-12, rtol=0)
    torch.testing.assert_close(y_win[:, :K], y_kv[:, :K], atol=1e-12, rtol=0)
    if n_layers == 1:  # one layer sees exactly K inputs: re-running the window loses nothing
        torch.testing.assert_close(y_win, y_kv, atol=1e-12, rtol=0)
    else:  # deeper layers of the sliding-window model see inputs older than K; the re-run forgets them
        assert (y_win[:, K:] - y_kv[:, K:]).abs().amax(dim=(0, 2)).min() > 1e-4
    assert s_win[0].shape == (2, C, D) and s_win[1].tolist() == [C, C]


def test_head_count_must_give_an_even_head_width():
    with pytest.raises(ValueError, match=r"d_model 24 must be a multiple of 2·n_heads = 16"):
        make_backbone("transformer", d_model=24, n_heads=8)
    with pytest.raises(ValueError, match=r"step_mode 'ring' is not one of"):
        make_backbone("transformer", d_model=16, step_mode="ring")
