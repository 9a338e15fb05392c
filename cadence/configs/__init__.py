"""Hydra configs (the YAML files beside this module) and their conversion to typed dataclasses."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TypeVar

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).parent
T = TypeVar("T")


def to_dataclass(cls: type[T], node: DictConfig | dict, section: str, drop: tuple[str, ...] = ("name",)) -> T:
    """Build ``cls`` from a config section; a key it does not define raises a ValueError naming the
    section, the key and the valid keys (``drop`` lists keys used elsewhere, e.g. in the run dir)."""
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    values = {k: v for k, v in values.items() if k not in drop}
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {section}; valid keys: {sorted(fields)}")
    return cls(**values)
