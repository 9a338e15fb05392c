"""Every registered backbone implements the protocol of ``cadence.policies.backbones.base``.

A backbone whose module does not import yet is skipped with the import error as the reason.
"""

import importlib

import pytest
import torch

from cadence.policies.backbones import REGISTRY, cat_states, index_state, make_backbone, reset_state
from cadence.policies.policy import count_params

D = 16
EXTRA = {"linoss": {"state_dim": 8}, "transformer": {"context": 8}, "mlp": {"frame_stack": 3}}  # small and non-trivial
NAMES = sorted(REGISTRY)


def build(name, d_model=D, **kw):
    try:
        importlib.import_module(REGISTRY[name][0])
    except ImportError as e:
        pytest.skip(f"backbone module for {name!r} does not import yet: {e}")
    return make_backbone(name, control_period=0.04, d_model=d_model, **({"n_layers": 2} | EXTRA.get(name, {}) | kw))


def assert_close(actual, expected, tol=1e-5):
    """|a − b| ≤ tol · max(1, max|b|), elementwise over tensors or states."""
    if isinstance(expected, tuple):
        for a, b in zip(actual, expected, strict=True):
            assert_close(a, b, tol)
        return
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, atol=tol * scale, rtol=0)


def run_steps(bb, x, state):
    ys = []
    for t in range(x.shape[1]):
        y_t, state = bb.step(x[:, t], state)
        ys.append(y_t)
    return torch.stack(ys, dim=1), state


@pytest.mark.parametrize("from_zero", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_forward_equals_300_steps(name, from_zero):
    bb = build(name).eval()
    x = torch.randn(2, 300, D)
    with torch.no_grad():
        state = bb.initial_state(2) if from_zero else bb(torch.randn(2, 37, D))[1]
        y, final = bb(x, state)
        y_steps, s = run_steps(bb, x, state)
    assert_close(y_steps, y)
    assert_close(s, final)


@pytest.mark.parametrize("name", NAMES)
def test_chunked_forward_equals_one_call(name):
    bb = build(name)
    x = torch.randn(3, 120, D)
    _, state0 = bb(torch.randn(3, 11, D))
    y, final = bb(x, state0)
    s, parts = state0, []
    for chunk in x.split([50, 3, 67], dim=1):
        y_c, s = bb(chunk, s)
        parts.append(y_c)
    assert_close(torch.cat(parts, 1), y)
    assert_close(s, final)


@pytest.mark.parametrize("name", NAMES)
def test_resets_equal_separate_episodes(name):
    bb = build(name)
    x = torch.randn(3, 40, D)
    resets = torch.zeros(3, 40, dtype=torch.bool)
    # env 0 restarts at once and 2 steps before the end (the final state must forget the steps before),
    # env 1 has a 1-step episode and restarts on the last step, env 2 never restarts
    resets[0, 0] = resets[0, 25] = resets[0, 38] = resets[1, 3] = resets[1, 4] = resets[1, 39] = True
    _, state0 = bb(torch.randn(3, 9, D))  # a non-zero state the resets must discard
    y, final = bb(x, state0, resets)
    episodes = {0: [0, 25, 38, 40], 1: [0, 3, 4, 39, 40], 2: [0, 40]}
    for b, bounds in episodes.items():
        s = index_state(state0, slice(b, b + 1))
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            start = s if lo == 0 and not resets[b, 0] else None  # a reset: a fresh episode
            y_ep, s = bb(x[b : b + 1, lo:hi], start)
            assert_close(y[b : b + 1, lo:hi], y_ep)
        assert_close(index_state(final, slice(b, b + 1)), s)


@pytest.mark.parametrize("name", NAMES)
def test_state_helpers_reset_split_and_join_environments(name):
    """reset_state gives environments 0 and 2 a fresh episode; index_state / cat_states regroup them."""
    bb = build(name).eval()
    x = torch.randn(4, 12, D)
    with torch.no_grad():
        _, state = bb(torch.randn(4, 20, D))
        state = reset_state(state, torch.tensor([True, False, True, False]))
        y, final = run_steps(bb, x, state)
        groups = ([0, 2], [1, 3])
        parts = [bb(x[idx], index_state(state, idx)) for idx in groups]
        fresh, _ = bb(x[[0, 2]])
    for s, init in zip(index_state(state, [0, 2]), bb.initial_state(2)):
        assert torch.equal(s, init.to(s.dtype)) and s.dtype == init.dtype
    assert_close(parts[0][0], fresh)
    order = groups[0] + groups[1]
    assert_close(torch.cat([p[0] for p in parts]), y[order])
    assert_close(cat_states([p[1] for p in parts]), index_state(final, order))


@pytest.mark.parametrize("name", NAMES)
def test_given_state_is_not_modified(name):
    bb = build(name)
    _, state = bb(torch.randn(2, 10, D))
    before = tuple(s.clone() for s in state)
    bb.step(torch.randn(2, D), state)
    bb(torch.randn(2, 5, D), state, torch.tensor([[False, True, False, False, False]] * 2))
    for a, b in zip(state, before):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    bb = build(name).train()
    _, state = bb(torch.randn(2, 10, D))
    state = tuple(s.detach() for s in state)
    resets = torch.zeros(2, 30, dtype=torch.bool)
    resets[1, 12] = True
    y, final = bb(torch.randn(2, 30, D), state, resets)
    loss = (y * torch.randn_like(y)).sum()
    loss = loss + sum((s * torch.randn_like(s)).sum() for s in final if s.is_floating_point())  # not the count
    loss.backward()
    for pname, p in bb.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", NAMES)
def test_bad_shapes_fail_naming_the_tensor(name):
    bb = build(name)
    with pytest.raises(ValueError, match=r"^x has shape \(2, 5, 15\), expected \(B, L, 16\)"):
        bb(torch.randn(2, 5, D - 1))
    with pytest.raises(ValueError, match=r"^x has shape \(2, 17\), expected \(B, 16\)"):
        bb.step(torch.randn(2, D + 1), bb.initial_state(2))
    with pytest.raises(ValueError, match=r"state\[0\] has shape .* \(use backbone.initial_state\(batch_size\)\)"):
        bb.step(torch.randn(2, D), bb.initial_state(3))
    with pytest.raises(ValueError, match=r"state must be a tuple of \d+ tensors as returned by initial_state\(\)"):
        bb(torch.randn(2, 5, D), bb.initial_state(2) + (torch.zeros(2),))


@pytest.mark.parametrize("name", NAMES)
def test_invalid_config_names_the_field(name):
    with pytest.raises(ValueError, match="d_model"):
        build(name, d_model=0)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_grows_with_any_multiple_of_8(name):
    """The policy sizes d_model to a parameter budget over multiples of 8, building under the meta device."""
    counts = []
    for d in (8, 16, 24, 40, 64, 128):
        with torch.device("meta"):
            counts.append(count_params(build(name, d_model=d)))
    assert counts == sorted(set(counts)), counts
