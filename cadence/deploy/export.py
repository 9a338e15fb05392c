"""Export one control step, with the recurrent state as explicit inputs and outputs.

Both files compute ``(action, *next_state) = step(obs, *state)`` at batch 1 (see
:class:`~cadence.deploy.step.PolicyStep`): the caller starts from zeros of the shapes and dtypes in
``step.initial_state(1)`` (LinOSS keeps its state in float64) and feeds each returned state back.
ONNX names: inputs ``obs``, ``state_0`` … ``state_{n-1}`` (``obs``, ``images``, ``state_0`` … for a policy that
observes cameras: uint8 (1, C, H, W), assembled as :func:`cadence.policies.image_encoder.assemble_frames` does);
outputs ``action``, ``next_state_0`` ….

ONNX uses the TorchScript-based exporter (``dynamo=False``): the dynamo exporter needs
``onnxscript``, which Cadence does not depend on. It needs the ``onnx`` package. That exporter has
no rule for ``aten::rms_norm`` (ONNX's RMSNormalization is opset 23), so :func:`export_onnx` adds
one (:func:`_rms_norm`) for the duration of the export.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch.onnx import symbolic_helper

from .controller import trace_step
from .step import PolicyStep

ONNX_OPSET = 17


def export_torchscript(step: PolicyStep, path: str | os.PathLike) -> Path:
    """Write the traced, frozen step to ``path`` (load with ``torch.jit.load``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.freeze(trace_step(step)), str(path))
    return path


def state_names(step: PolicyStep) -> tuple[list[str], list[str]]:
    """ONNX input and output names: (["obs", ("images",) "state_0", …], ["action", "next_state_0", …]); "images"
    (1, C, H, W) uint8 for a policy that observes cameras."""
    n = len(step.initial_state(1))
    images = [] if step.image_shape is None else ["images"]
    return ["obs", *images] + [f"state_{i}" for i in range(n)], ["action"] + [f"next_state_{i}" for i in range(n)]


def _rms_norm(g, x, normalized_shape, weight, eps):
    """ONNX rule for ``aten::rms_norm`` over the last axis: x / sqrt(mean(x², -1) + eps) · weight."""
    if len(symbolic_helper._get_const(normalized_shape, "is", "normalized_shape")) != 1:
        raise NotImplementedError("ONNX export of rms_norm handles normalization over the last axis only")
    eps = symbolic_helper._maybe_get_const(eps, "f")
    eps = torch.finfo(torch.float32).eps if symbolic_helper._is_none(eps) else float(eps)
    mean_sq = g.op("ReduceMean", g.op("Mul", x, x), axes_i=[-1], keepdims_i=1)
    rms = g.op("Sqrt", g.op("Add", mean_sq, g.op("Constant", value_t=torch.tensor(eps))))
    return g.op("Mul", g.op("Div", x, rms), weight)


def export_onnx(step: PolicyStep, path: str | os.PathLike, opset: int = ONNX_OPSET) -> Path:
    """Write the step as an ONNX graph (opset ``opset`` ≥ 17) to ``path`` and check it with ``onnx.checker``."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError("ONNX export needs the onnx package: pip install onnx onnxruntime") from e
    if opset < ONNX_OPSET:
        raise ValueError(f"opset {opset} is too old; use {ONNX_OPSET} or newer")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs, outputs = state_names(step)
    torch.onnx.register_custom_op_symbolic("aten::rms_norm", _rms_norm, opset)
    try:
        with warnings.catch_warnings():  # the TorchScript-based exporter is deprecated in favour of dynamo
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(step, step.example_inputs(1), str(path), input_names=inputs, output_names=outputs,
                              opset_version=opset, dynamo=False)  # fmt: skip
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::rms_norm", opset)
    onnx.checker.check_model(str(path))
    return path
