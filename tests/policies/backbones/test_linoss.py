"""LinOSS backbone: execution modes agree, gradients are exact, CPG init places the spectrum, bad input fails clearly."""

import math

import pytest
import torch

from cadence.policies.backbones import make_backbone
from cadence.policies.backbones.linoss import VARIANTS, LinOSSLayer
from cadence.policies.backbones.linoss_init import InitConfig, eigenvalues, init_oscillators_, layer_spectrum
from cadence.policies.backbones.scan import Transition, scan_loop, scan_numba, scan_parallel


def backbone(variant, **kw):
    return make_backbone("linoss", control_period=0.04, d_model=16, n_layers=2, state_dim=8, variant=variant, **kw)


def assert_close_to_scale(actual, expected, tol=1e-5):
    """|a − b| ≤ tol · max(1, max|b|): float32 has a resolution of 7.6e-6 at 100, the output scale an
    undamped IMEX oscillator reaches under white-noise input, so an absolute 1e-5 is below float32's reach."""
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual, expected, atol=tol * scale, rtol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_equals_repeated_step_over_2048_steps(variant):
    bb = backbone(variant).eval()
    B, L = 2, 2048
    x = torch.randn(B, L, 16)
    with torch.no_grad():
        _, state0 = bb(torch.randn(B, 32, 16))  # non-zero initial state
        y, final = bb(x, state0)
        s = state0
        ys = []
        for t in range(L):
            y_t, s = bb.step(x[:, t], s)
            ys.append(y_t)
    assert_close_to_scale(torch.stack(ys, 1), y)
    for a, b in zip(s, final):
        assert_close_to_scale(a, b)


@pytest.mark.parametrize("scan", ["loop", "numba", "parallel"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_chunked_forward_equals_one_call(variant, scan):
    bb = backbone(variant, scan=scan)
    x = torch.randn(3, 300, 16)
    y, final = bb(x)
    s, parts = None, []
    for chunk in x.split([100, 57, 143], dim=1):
        y_c, s = bb(chunk, s)
        parts.append(y_c)
    torch.testing.assert_close(torch.cat(parts, 1), y, atol=1e-5, rtol=1e-5)
    for a, b in zip(s, final):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("scan", ["loop", "numba", "parallel"])
def test_resets_equal_separate_episodes(scan):
    bb = backbone("damped", scan=scan)
    x = torch.randn(2, 90, 16)
    resets = torch.zeros(2, 90, dtype=torch.bool)
    resets[0, 40] = resets[1, 10] = resets[1, 70] = True
    y, _ = bb(x, bb.initial_state(2), resets)
    for b, bounds in ((0, [0, 40, 90]), (1, [0, 10, 70, 90])):
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            y_ep, _ = bb(x[b : b + 1, lo:hi])
            torch.testing.assert_close(y[b : b + 1, lo:hi], y_ep, atol=1e-5, rtol=1e-5)


def _random_transition(N, dtype):
    A, dt = torch.rand(N // 2, dtype=dtype), torch.rand(N // 2, dtype=dtype) * 0.5 + 0.3
    S = 1 / (1 + dt**2 * A)
    coefs = [S, -dt * A * S, dt * S, S, dt * S, dt**2 * S]
    return [c.repeat_interleave(2).requires_grad_() for c in coefs]


@pytest.mark.parametrize("with_resets", [False, True])
@pytest.mark.parametrize("fn", [scan_numba, scan_parallel, scan_loop])
def test_scan_gradcheck(fn, with_resets):
    B, L, N = 2, 9, 4
    u = torch.randn(B, L, N, dtype=torch.float64, requires_grad=True)
    z0 = torch.randn(B, N, dtype=torch.float64, requires_grad=True)
    x0 = torch.randn(B, N, dtype=torch.float64, requires_grad=True)
    coefs = _random_transition(N, torch.float64)
    keep = (torch.rand(B, L) > 0.3).double() if with_resets else None
    assert torch.autograd.gradcheck(lambda u, z0, x0, *c: fn(u, Transition(*c), z0, x0, keep), (u, z0, x0, *coefs))


@pytest.mark.parametrize("fn", [scan_numba, scan_parallel])
def test_fast_scan_gradients_equal_reference(fn):
    B, L, N = 3, 200, 16
    u = torch.randn(B, L, N, dtype=torch.float64, requires_grad=True)
    z0, x0 = torch.randn(2, B, N, dtype=torch.float64, requires_grad=True).unbind(0)
    coefs = _random_transition(N, torch.float64)
    keep = (torch.rand(B, L) > 0.05).double()
    inputs = (u, z0, x0, *coefs)
    ref = scan_loop(u, Transition(*coefs), z0, x0, keep)
    out = fn(u, Transition(*coefs), z0, x0, keep)
    grads = [torch.randn_like(r) for r in ref]
    g_ref = torch.autograd.grad(ref, inputs, grads)
    g_out = torch.autograd.grad(out, inputs, grads)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)


def test_the_numba_scan_keeps_to_pytorchs_thread_count():
    numba = pytest.importorskip("numba")
    u, z0 = torch.randn(2, 5, 4, dtype=torch.float64), torch.zeros(2, 4, dtype=torch.float64)
    coefs = [c.detach() for c in _random_transition(4, torch.float64)]
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            scan_numba(u, Transition(*coefs), z0, torch.zeros_like(z0))
            assert numba.get_num_threads() == min(n, numba.config.NUMBA_NUM_THREADS)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("control_period", [1 / 20, 1 / 125])
@pytest.mark.parametrize("variant", VARIANTS)
def test_cpg_init_places_requested_eigenvalues(variant, control_period):
    from cadence.policies.backbones.linoss_init import cpg_targets

    cfg = InitConfig(kind="cpg", f_min_hz=0.5, f_max_hz=4.0, broadband_fraction=0.25)
    P, n_broad = 32, 8
    layer = LinOSSLayer(P, 4, variant).double()
    init_oscillators_(layer, cfg, control_period, torch.Generator().manual_seed(1))
    # the same draws, replayed: the paper draw first, then the CPG targets
    g = torch.Generator().manual_seed(1)
    probe = LinOSSLayer(P, 4, variant).double()
    init_oscillators_(probe, InitConfig(kind="paper"), control_period, g)
    theta, r = cpg_targets(P - n_broad, cfg, control_period, variant, g)
    angle, radius = eigenvalues(layer)
    torch.testing.assert_close(angle[n_broad:], theta, atol=1e-6, rtol=0)
    expected_r = {"damped": r, "imex": torch.ones_like(r), "im": torch.cos(theta)}[variant]
    torch.testing.assert_close(radius[n_broad:], expected_r, atol=1e-6, rtol=0)
    spec = layer_spectrum(layer, control_period)["frequency_hz"][n_broad:]
    assert ((spec > 0.5 - 1e-9) & (spec < 4.0 + 1e-9)).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_cpg_band_modes_have_unit_stiffness_and_bounded_gain_at_any_control_rate(variant):
    """The band's rate goes into the internal step Δ, not into A: at 20, 125 and 500 Hz every band mode
    whose Δ is not clipped has A = 1 (with the paper's Δ ≈ 0.5, A ∝ θ² would be ~1e-3 at 125 Hz), and with
    ``unit_gain`` every mode's static gain ‖B_k‖ / A_k (x* = B u / A) stays within B's own scale."""
    from cadence.policies.backbones.linoss_init import DT_RANGE

    for rate in (20, 125, 500):
        cfg = InitConfig(kind="cpg", broadband_fraction=0.25)
        layer = LinOSSLayer(64, 16, variant, init=cfg, control_period=1 / rate, generator=torch.Generator().manual_seed(0))
        A, _, dt = (t.detach().double() if t is not None else None for t in layer.constrained())
        band = slice(16, None)  # the first quarter keeps the paper init
        free = dt[band] < DT_RANGE[1] - 1e-6
        assert free.double().mean() > 0.5, (rate, dt[band])
        torch.testing.assert_close(A[band][free], torch.ones_like(A[band][free]), rtol=1e-4, atol=0)
        gain = layer.B.detach().flatten(1).norm(dim=1).double() / A
        assert gain.max() <= math.sqrt(2), (rate, gain.max())  # ‖B_k‖ ≤ √2 for B ~ U[-1/√H, 1/√H) of shape (H, 2)


def test_cpg_init_needs_control_period():
    with pytest.raises(ValueError, match="control period"):
        make_backbone("linoss", d_model=8, n_layers=1, state_dim=4)


@pytest.mark.parametrize("variant", ["im", "damped"])
def test_stable_after_any_parameter_perturbation(variant):
    layer = LinOSSLayer(64, 4, variant).double()
    for trial in range(20):
        with torch.no_grad():
            for p in (layer.A_diag, layer.steps) + ((layer.G_diag,) if variant == "damped" else ()):
                p.add_(torch.randn_like(p) * 10 ** (trial % 4 - 1))
        # Jury criterion for a real 2×2 M: both |λ| ≤ 1  <=>  det ≤ 1 and |tr| ≤ 1 + det. Exact, unlike
        # the eigenvalues themselves on D-LinOSS's projection boundary (a repeated eigenvalue, a Jordan block).
        t = layer.transition(torch.float64)
        tr, det = t.m11 + t.m22, t.m11 * t.m22 - t.m12 * t.m21
        assert (det <= 1 + 1e-12).all() and (tr.abs() <= 1 + det + 1e-12).all(), trial
        assert (eigenvalues(layer)[1] <= 1 + 1e-7).all()


def test_imex_stability_is_enforced_only_when_asked():
    raw = LinOSSLayer(16, 4, "imex").double()
    safe = LinOSSLayer(16, 4, "imex", enforce_stability=True).double()
    with torch.no_grad():
        raw.A_diag.fill_(50.0)
        safe.A_diag.fill_(50.0)
    assert eigenvalues(raw)[1].max() > 1  # Δt²A > 4: a growing real mode, as in the official code
    assert eigenvalues(safe)[1].max() <= 1 + 1e-7  # capped at the boundary: λ = −1, a Jordan block


def test_bad_input_errors():
    bb = backbone("damped", check_finite=True)
    with pytest.raises(ValueError, match=r"x has shape \(2, 5, 7\), expected \(B, L, 16\)"):
        bb(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"state\[0\] has shape"):
        bb(torch.randn(2, 5, 16), bb.initial_state(3))
    with pytest.raises(ValueError, match=r"x has shape \(2, 16, 1\), expected \(B, 16\)"):
        bb.step(torch.randn(2, 16, 1), bb.initial_state(2))
    x = torch.randn(2, 5, 16)
    x[1, 2, 3] = math.nan
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        bb(x)
    with pytest.raises(ValueError, match="variant 'rk4'"):
        backbone("rk4")


def test_stepping_coefficients_follow_writes_the_version_counter_misses():
    # the no-grad cache of a layer's coefficients is keyed on the parameters' versions; a write through .data (as
    # PyTorch's fused AdamW does) leaves them unchanged, so the switch to eval mode must drop the cache
    bb = backbone("damped").eval()
    layer = bb.layers()[0]
    x, state = torch.randn(2, 16), bb.initial_state(2)
    with torch.no_grad():
        before = bb.step(x, state)[0]
        layer.B.data.mul_(2.0)
        assert torch.equal(bb.step(x, state)[0], before)  # stale, as documented: nothing told the cache
        bb.train().eval()
        after = bb.step(x, state)[0]
        torch.testing.assert_close(after, bb.forward(x[:, None], state)[0][:, 0], rtol=1e-5, atol=1e-6)
    assert not torch.equal(after, before)
