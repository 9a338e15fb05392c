"""Hydra configs (the YAML files beside this module) and their conversion to typed dataclasses."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

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
    check_types(cls, values, section)
    return cls(**values)


def check_types(cls: type, values: dict, section: str) -> None:
    """Each of ``values`` has the type its field of the dataclass ``cls`` declares (bool, int, float, str, list,
    dict, None and unions of them; other types are left to ``cls``); a mismatch raises a ValueError naming
    ``SECTION.KEY``, what it takes and what it got."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # a name its module cannot resolve at run time: leave the checks to cls
        return
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key in hints and not _accepts(hints[key], value):
            raise _type_error(f"{section}.{key}", hints[key], value, defaults.get(key))


def check_value_types(cfg: DictConfig, defaults: DictConfig, prefix: str = "") -> None:
    """Every number or boolean of ``defaults`` (a command's config as the YAML files define it, which
    tests/configs proves equal to the dataclasses' defaults) is a value of that type in ``cfg`` (the same config
    with the command line's values) or null: the check of :func:`check_types` without importing the modules
    that define the dataclasses, so that ``algo.steps=abc`` is refused at once."""
    for key in defaults:
        try:
            default, value = defaults[key], cfg[key]
        except OmegaConfBaseException:  # left out (???), removed (~key), or resolved only inside an app (${now:})
            continue
        if isinstance(default, DictConfig) and isinstance(value, DictConfig):
            check_value_types(value, default, f"{prefix}{key}.")
            continue
        if type(default) in (bool, int, float) and value is not None and not _accepts(type(default), value):
            raise _type_error(f"{prefix}{key}", type(default), value, default)


def _type_error(key: str, hint, value, default) -> ValueError:
    """``KEY takes an integer, got 'abc'; write e.g. KEY=3000`` (the default, when it is an example)."""
    example = str(default).lower() if isinstance(default, bool) else default
    example = example if isinstance(default, bool | int | float | str) and _accepts(hint, default) else "VALUE"
    return ValueError(f"{key} takes {_describe(hint)}, got {value!r}; write e.g. {key}={example}")


def _accepts(hint, value) -> bool:
    """Whether ``value`` (a plain config value) is of the type ``hint``; an int is a float, a bool is neither."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in args)
    if origin is typing.Literal:
        return value in args
    hint = origin or hint
    if hint is type(None):
        return value is None
    if hint in (int, float):
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    if hint in (bool, str, list, dict):
        return isinstance(value, hint)
    if hint is tuple:
        return isinstance(value, list | tuple)
    return True  # a class of its own (a nested config, a path): its constructor checks it


def _describe(hint) -> str:
    """``int | None`` -> "an integer or null"."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list [a,b]",
             tuple: "a list [a,b]", dict: "a mapping {key: value}", type(None): "null"}  # fmt: skip
    return names.get(typing.get_origin(hint) or hint, getattr(hint, "__name__", str(hint)))


def check_device(device: str, key: str = "device") -> str:
    """``device`` if this machine has it: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; anything else, or a GPU that
    is not there, raises a ValueError naming ``key`` and the devices to choose from."""
    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
        raise ValueError(f"{key}={device!r} is not a device; write {key}=cpu, {key}=cuda (the first GPU) or "
                         f"{key}=cuda:N")  # fmt: skip
    if kind == "cpu":
        return device
    import torch  # only for a GPU: a CPU run's checks stay free of the torch import

    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{key}=mps but this machine has no Apple GPU (torch.backends.mps); use {key}=cpu")
    count = torch.cuda.device_count() if kind == "cuda" else 1
    if kind == "cuda" and int(index or 0) >= count:
        found = f"only {count} CUDA GPU(s) (cuda:0 … cuda:{count - 1})" if count else "no CUDA GPU"
        raise ValueError(f"{key}={device} but this machine has {found}; use {key}=cpu" +
                         (f" or {key}=cuda:0" if count else ""))  # fmt: skip
    return device
