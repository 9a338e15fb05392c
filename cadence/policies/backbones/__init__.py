"""Temporal backbones: one protocol (:mod:`.base`), one module per architecture.

``make_backbone(name, d_model=..., **kwargs)`` builds any of them by name; nothing outside this
package needs to know which one it holds.
"""

from __future__ import annotations

import dataclasses
import importlib

from ...configs import check_types
from .base import Backbone, State, cat_states, index_state, reset_state

# name -> (module, config class, backbone class); imported on first use.
REGISTRY: dict[str, tuple[str, str, str]] = {
    "linoss": ("cadence.policies.backbones.linoss", "LinOSSConfig", "LinOSSBackbone"),
    "transformer": ("cadence.policies.backbones.transformer", "TransformerConfig", "TransformerBackbone"),
    "mamba": ("cadence.policies.backbones.mamba", "MambaConfig", "MambaBackbone"),
    "gru": ("cadence.policies.backbones.gru", "GRUConfig", "GRUBackbone"),
    "mlp": ("cadence.policies.backbones.mlp", "MLPConfig", "MLPBackbone"),
}


def backbone_classes(name: str) -> tuple[type, type]:
    """Return (config class, backbone class) for a registered backbone name."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(REGISTRY)}")
    module, cfg_cls, bb_cls = REGISTRY[name]
    mod = importlib.import_module(module)
    return getattr(mod, cfg_cls), getattr(mod, bb_cls)


def make_backbone_config(name: str, **kwargs):
    """Build the typed config of backbone ``name``; unknown keys and values of the wrong type raise a
    ``ValueError`` naming them."""
    cfg_cls, _ = backbone_classes(name)
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise ValueError(f"unknown {name} backbone option(s) {unknown}; valid options: {sorted(fields)}")
    check_types(cfg_cls, kwargs, "policy.backbone_kwargs")
    return cfg_cls(**kwargs)


def make_backbone(name: str, control_period: float | None = None, **kwargs) -> Backbone:
    """Build backbone ``name`` from config keyword arguments.

    ``control_period`` is the environment's seconds per step (``env.unwrapped.dt``); backbones
    with physical time constants (LinOSS's CPG init) use it, the others ignore it.
    """
    _, bb_cls = backbone_classes(name)
    return bb_cls(make_backbone_config(name, **kwargs), control_period=control_period)


__all__ = [
    "Backbone",
    "State",
    "REGISTRY",
    "backbone_classes",
    "make_backbone",
    "make_backbone_config",
    "reset_state",
    "index_state",
    "cat_states",
]
