"""The dataclasses hold every default; ``cadence/configs/{policy,algo}/*.yaml`` repeat them key for key.

A YAML value that differs from its dataclass default would make ``cadence-train`` and the Python API
(``make_policy(PolicyConfig(backbone=X), ...)``) build different things from the same name.
"""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from omegaconf import OmegaConf

from cadence.configs import CONFIG_DIR, compose, to_dataclass
from cadence.policies import PolicyConfig, count_params, make_policy
from cadence.policies.backbones import backbone_classes
from cadence.training.bc import BCConfig
from cadence.training.ppo import PPOConfig

POLICIES = sorted(p.stem for p in (CONFIG_DIR / "policy").glob("*.yaml"))
ALGOS = {"bc": BCConfig, "ppo": PPOConfig}
OBS = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def load(group: str, name: str) -> dict:
    """``cadence/configs/<group>/<name>.yaml`` as plain Python values, without its ``name`` key."""
    values = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / group / f"{name}.yaml"), resolve=True)
    assert values.pop("name") == name, f"{group}/{name}.yaml: name must be the file's stem"
    return values


def default(f: dataclasses.Field):
    assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, f"{f.name}: no default"
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def assert_repeats_defaults(values: dict, cls: type, where: str, skip: tuple[str, ...] = ()) -> None:
    """``values`` has exactly the fields of ``cls`` (less ``skip``), each equal to its default, recursing into
    fields whose default is itself a dataclass (LinOSS's ``init``)."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    assert set(values) == set(fields), (
        f"{where}: missing {sorted(set(fields) - set(values))}, unknown {sorted(set(values) - set(fields))}"
    )
    for name, f in fields.items():
        expected, value = default(f), values[name]
        if dataclasses.is_dataclass(expected):
            assert_repeats_defaults(value, type(expected), f"{where}.{name}")
        else:
            assert type(value) is type(expected) and value == expected, (
                f"{where}.{name} = {value!r}, but {cls.__name__}.{name} defaults to {expected!r}"
            )


@pytest.mark.parametrize("name", POLICIES)
def test_policy_yaml_repeats_the_dataclass_defaults(name):
    values = load("policy", name)
    assert values.pop("backbone") == name, f"policy/{name}.yaml must select backbone {name}"
    backbone_kwargs = values.pop("backbone_kwargs")
    assert_repeats_defaults(values, PolicyConfig, f"policy/{name}", skip=("backbone", "backbone_kwargs"))
    cfg_cls, _ = backbone_classes(name)
    assert_repeats_defaults(backbone_kwargs, cfg_cls, f"policy/{name}.backbone_kwargs", skip=("d_model",))


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIG_DIR / "algo").glob("*.yaml")))
def test_algo_yaml_repeats_the_dataclass_defaults(name):
    assert name in ALGOS, f"algo/{name}.yaml has no dataclass in this test's ALGOS"
    assert_repeats_defaults(load("algo", name), ALGOS[name], f"algo/{name}")


@pytest.mark.parametrize("name", POLICIES)
def test_python_api_and_cli_build_the_same_policy(name):
    """``make_policy(PolicyConfig(backbone=X))`` (README) is the policy that ``cadence-train policy=X`` builds."""
    from_cli = to_dataclass(PolicyConfig, compose("train", [f"policy={name}"]).policy, "policy")
    python, cli = (make_policy(cfg, OBS, ACT, control_period=0.04) for cfg in (PolicyConfig(backbone=name), from_cli))
    assert python.backbone.cfg == cli.backbone.cfg
    assert dataclasses.replace(python.cfg, backbone_kwargs={}) == dataclasses.replace(cli.cfg, backbone_kwargs={})
    assert count_params(python) == count_params(cli)
    assert [(k, p.shape) for k, p in python.named_parameters()] == [(k, p.shape) for k, p in cli.named_parameters()]
