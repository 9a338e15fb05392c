"""Hydra configs (the YAML files beside this module) and their conversion to typed dataclasses."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TypeVar

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).parent
T = TypeVar("T")


def compose(config_name: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Cadence's config ``config_name`` (``train``, ``compare``, ...) composed with command-line ``overrides``,
    exactly as the CLI of that name sees it; works inside a running Hydra app (whose own state is kept) and
    outside one."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            return hydra_compose(config_name=config_name, overrides=list(overrides))
    finally:
        restore_gh_from_backup(backup)


def to_dataclass(cls: type[T], node: DictConfig | dict, section: str, drop: tuple[str, ...] = ("name",)) -> T:
    """Build ``cls`` from a config section; a key it does not define raises a ValueError naming the
    section, the key and the valid keys — or its new name, for a key listed in ``cls.RENAMED`` (``drop`` lists
    keys used elsewhere, e.g. in the run dir)."""
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    values = {k: v for k, v in values.items() if k not in drop}
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    renamed = {k: v for k, v in getattr(cls, "RENAMED", {}).items() if k in unknown}
    if renamed:
        old, new = next(iter(renamed.items()))
        raise ValueError(f"{section}.{old} is now {section}.{new} (one name for one concept across trainers, "
                         f"docs/architecture.md); write {section}.{new}=...")  # fmt: skip
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {section}; valid keys: {sorted(fields)}")
    return cls(**values)
