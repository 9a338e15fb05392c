"""Parity with the official LinOSS / D-LinOSS code: every file in tests/data/linoss_vectors/ (its README.md)."""

import numpy as np
import pytest
import torch

from cadence.policies.backbones.linoss import LinOSSBlock, LinOSSLayer, LinOSSModel, convert_official

LAYERS = {"linoss_im": "im", "linoss_imex": "imex", "dlinoss": "damped", "dlinoss_clamp": "damped"}
SCANS = ["loop", "numba", "parallel"]


def tol(name: str) -> dict:
    return dict(atol=1e-8, rtol=0) if name.endswith("_f64") else dict(atol=1e-4, rtol=1e-4)


def make(module, v):
    """Load official weights; only the BatchNorm running statistics (not parameters upstream) may be absent."""
    missing, unexpected = module.load_state_dict(convert_official(v), strict=False)
    assert not unexpected and all(k.split(".")[-1] in ("hidden_mean", "hidden_var", "counter") for k in missing)
    return module


def load(vectors_dir, name):
    path = vectors_dir / f"{name}.npz"
    z = np.load(path)
    dtype = torch.float64 if name.endswith("_f64") else torch.float32
    return {k: z[k] for k in z.files if k != "meta_json"}, dtype


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("suffix", ["", "_f64"])
@pytest.mark.parametrize("base", sorted(LAYERS))
def test_layer(vectors_dir, base, suffix, scan):
    name = base + suffix
    if base == "dlinoss_clamp" and not suffix:
        pytest.skip("float32 clamp case: clamped modes sit on a Jordan block, ~1e-2 expected; f64 checked")
    v, dtype = load(vectors_dir, name)
    layer = LinOSSLayer(8, 4, LAYERS[base], scan=scan).to(dtype)
    layer.load_state_dict(convert_official(v))
    A, G, dt = layer.constrained()
    kw = tol(name)
    torch.testing.assert_close(A, torch.from_numpy(v["A_diag"]), **kw)
    torch.testing.assert_close(dt, torch.from_numpy(v["dt"]), **kw)
    if G is not None:
        torch.testing.assert_close(G, torch.from_numpy(v["G_diag"]), **kw)
    y, state = layer(torch.from_numpy(v["u"])[None])
    torch.testing.assert_close(y[0], torch.from_numpy(v["y"]), **kw)
    pos = torch.complex(torch.from_numpy(v["state_pos_real"][-1]), torch.from_numpy(v["state_pos_imag"][-1]))
    ours = torch.view_as_complex(state[0, 1].reshape(8, 2).contiguous()).to(pos.dtype)
    torch.testing.assert_close(ours, pos, **kw)


@pytest.mark.parametrize("suffix", ["", "_f64"])
@pytest.mark.parametrize("base,variant,norm,prefix",
                         [("block_linoss_im", "im", "batch_ema", "ssm"), ("block_dlinoss", "damped", "batch", "layer")])
def test_block(vectors_dir, base, variant, norm, prefix, suffix):
    name = base + suffix
    v, dtype = load(vectors_dir, name)
    kw = tol(name)
    block = make(LinOSSBlock(8, 4, variant, norm=norm).to(dtype).train(), v)
    # call 1 intermediates, in __call__ order
    x1 = torch.from_numpy(v["x1"])
    torch.testing.assert_close(block.norm(x1), torch.from_numpy(v["bn_out"]), **kw)
    fresh = make(LinOSSBlock(8, 4, variant, norm=norm).to(dtype).train(), v)
    for call in (1, 2):
        y, _ = fresh(torch.from_numpy(v[f"x{call}"]))
        torch.testing.assert_close(y, torch.from_numpy(v[f"y{call}"]), **kw)
        after = f"bn_state_after{call}."
        if norm == "batch_ema":
            torch.testing.assert_close(fresh.norm.hidden_mean, torch.from_numpy(v[after + "running_mean"]), **kw)
            torch.testing.assert_close(fresh.norm.hidden_var, torch.from_numpy(v[after + "running_var"]), **kw)
        else:
            torch.testing.assert_close(fresh.norm.hidden_mean, torch.from_numpy(v[after + "hidden_mean"]), **kw)
            torch.testing.assert_close(fresh.norm.hidden_var, torch.from_numpy(v[after + "hidden_var"]), **kw)
            assert int(fresh.norm.counter) == int(v[after + "counter"])


@pytest.mark.parametrize("suffix", ["", "_f64"])
def test_model_classification(vectors_dir, suffix):
    v, dtype = load(vectors_dir, "model_linoss_im_cls" + suffix)
    model = make(LinOSSModel(3, 5, 8, 4, 2, variant="im", norm="batch_ema", classification=True).to(dtype).train(), v)
    torch.testing.assert_close(model(torch.from_numpy(v["x"])), torch.from_numpy(v["out"]), **tol(suffix or "x"))


@pytest.mark.parametrize("suffix", ["", "_f64"])
def test_model_regression(vectors_dir, suffix):
    v, dtype = load(vectors_dir, "model_dlinoss_reg" + suffix)
    model = LinOSSModel(3, 2, 8, 4, 2, variant="damped", norm="batch", classification=False,
                        output_step=8, tanh_output=True).to(dtype).train()
    make(model, v)
    torch.testing.assert_close(model(torch.from_numpy(v["x"])), torch.from_numpy(v["out"]), **tol(suffix or "x"))
