"""cadence.deploy: the Controller equals SequencePolicy.act, exported steps equal eager ones, the guard,
and long-run boundedness of the LinOSS state."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from cadence.deploy import Controller, ControllerConfig, PolicyStep, export_onnx, export_torchscript, state_envelope
from cadence.deploy.export import state_names
from cadence.policies import PolicyConfig, make_policy
from cadence.policies.backbones import REGISTRY

OBS = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
ACT = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
BACKBONE_KWARGS = {
    "linoss": {"n_layers": 2, "state_dim": 16},
    "transformer": {"n_layers": 2, "context": 8},
    "mamba": {"n_layers": 2, "scan": "loop"},  # the numba and pscan scans are Python autograd.Functions: not exportable
    "gru": {"n_layers": 1},
    "mlp": {"n_layers": 2, "frame_stack": 3},
}
VARIANTS = ("im", "imex", "damped")


@pytest.fixture(autouse=True)
def _one_thread():
    """Batch-1 steps are a few hundred tiny ops: intra-op threads only add waiting (docs/deploy.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_policy(name: str, **backbone_kwargs):
    cfg = PolicyConfig(backbone=name, d_model=32, backbone_kwargs=BACKBONE_KWARGS[name] | backbone_kwargs)
    policy = make_policy(cfg, OBS, ACT, control_period=0.04)
    policy.obs_norm.set_stats(torch.randn(5), torch.rand(5) + 0.5)
    policy.action_norm.set_stats(torch.randn(2) * 0.1, torch.rand(2) + 0.5)
    return policy.eval()


def act_episode(policy, obs: np.ndarray) -> np.ndarray:
    """SequencePolicy.act over obs (T, O): the reference actions (T, A)."""
    policy.reset(1)
    return np.stack([policy.act(o[None]).numpy()[0] for o in obs])


def control_episode(controller: Controller, obs: np.ndarray) -> np.ndarray:
    controller.reset()
    return np.stack([controller(o).copy() for o in obs])


def assert_actions_close(actual: np.ndarray, expected: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, atol=1e-5 * scale, rtol=0)


@pytest.mark.parametrize("runtime", ["numba", "torchscript", "eager"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_fused_linoss_controller_equals_act(variant, runtime):
    policy = small_policy("linoss", variant=variant)
    controller = Controller(policy, ControllerConfig(runtime=runtime))
    assert controller.backbone_kind == "fused" and controller.runtime == runtime
    obs = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    assert_actions_close(control_episode(controller, obs), act_episode(policy, obs))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_generic_controller_equals_act(name):
    policy = small_policy(name)
    controller = Controller(policy, ControllerConfig(fused=False))
    assert controller.backbone_kind == "generic"
    obs = np.random.default_rng(1).normal(size=(100, 5)).astype(np.float32)
    assert_actions_close(control_episode(controller, obs), act_episode(policy, obs))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_torchscript_export_equals_eager_over_1000_steps(name, tmp_path):
    step = PolicyStep(small_policy(name))
    loaded = torch.jit.load(str(export_torchscript(step, tmp_path / "step.pt")))
    obs = torch.randn(1000, 1, 5)
    state, loaded_state = step.initial_state(1), step.initial_state(1)
    for o in obs:
        action, *state = step(o, *state)
        loaded_action, *loaded_state = loaded(o, *loaded_state)
        torch.testing.assert_close(loaded_action, action, atol=1e-5, rtol=0)
    for s, ls in zip(state, loaded_state):
        torch.testing.assert_close(ls, s, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", [*sorted(REGISTRY), "transformer-window"])
def test_onnx_export_equals_eager_over_1000_steps(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    name, _, step_mode = name.partition("-")
    step = PolicyStep(small_policy(name, **({"step_mode": step_mode} if step_mode else {})))
    session = ort.InferenceSession(str(export_onnx(step, tmp_path / "step.onnx")), providers=["CPUExecutionProvider"])
    inputs, outputs = state_names(step)
    assert [i.name for i in session.get_inputs()] == inputs and [o.name for o in session.get_outputs()] == outputs
    obs = torch.randn(1000, 1, 5)
    state = step.initial_state(1)
    onnx_state = [s.numpy() for s in state]
    for o in obs:
        action, *state = step(o, *state)
        onnx_action, *onnx_state = session.run(None, dict(zip(inputs, [o.numpy(), *onnx_state])))
        np.testing.assert_allclose(onnx_action, action.numpy(), atol=1e-5, rtol=0)


def test_from_pretrained_and_reset_repeat_an_episode(tmp_path):
    policy = small_policy("linoss")
    controller = Controller.from_pretrained(policy.save_pretrained(tmp_path / "ckpt"))
    obs = np.random.default_rng(2).normal(size=(50, 5))  # float64, as many envs return
    first = control_episode(controller, obs)
    np.testing.assert_array_equal(control_episode(controller, obs), first)
    assert_actions_close(first, act_episode(policy, obs.astype(np.float32)))


@pytest.mark.parametrize("name", ["linoss", "transformer"])
def test_reset_to_a_forward_state_continues_the_episode(name):
    policy = small_policy(name)
    obs = np.random.default_rng(4).normal(size=(60, 5)).astype(np.float32)
    with torch.no_grad():
        _, state = policy(torch.from_numpy(obs[None, :40]))
    controller = Controller(policy)
    controller.reset(state)
    tail = np.stack([controller(o).copy() for o in obs[40:]])
    assert_actions_close(tail, act_episode(policy, obs)[40:])
    with pytest.raises(ValueError, match="Controller.reset state"):
        controller.reset(policy.initial_state(2))


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e4])
def test_bad_observation_raises_naming_the_entry(bad):
    controller = Controller(small_policy("gru"))
    obs = np.zeros(5, np.float32)
    obs[3] = bad
    with pytest.raises(ValueError, match=r"entries \[3\]"):
        controller(obs)
    assert controller.bad_obs_count == 1


def test_hold_returns_last_action_without_advancing_the_state():
    policy = small_policy("linoss")
    obs = np.random.default_rng(3).normal(size=(20, 5)).astype(np.float32)
    clean = control_episode(Controller(policy), obs)
    controller = Controller(policy, ControllerConfig(on_bad_obs="hold", obs_limit=None))
    first = controller(np.full(5, np.nan, np.float32))  # before any good observation: the training-mean action
    expected_first = policy.to_env_action(torch.zeros(1, 2)).detach().numpy()[0]
    np.testing.assert_allclose(first, expected_first, rtol=1e-6)
    held = []
    for t, o in enumerate(obs):
        held.append(controller(o).copy())
        if t == 9:
            np.testing.assert_array_equal(controller(np.full(5, np.inf, np.float32)), held[-1])
    assert controller.bad_obs_count == 2
    assert_actions_close(np.stack(held), clean)


def test_auto_runtime_is_numba_where_it_applies_and_numba_elsewhere_raises():
    assert Controller(small_policy("linoss")).runtime == "numba"
    assert Controller(small_policy("gru")).runtime == "torchscript"
    assert Controller(small_policy("linoss", norm="rms")).runtime == "torchscript"
    with pytest.raises(ValueError, match="fused LinOSS steps only, not a generic gru step"):
        Controller(small_policy("gru"), ControllerConfig(runtime="numba"))
    with pytest.raises(ValueError, match="norm='layer' only"):
        Controller(small_policy("linoss", norm="rms"), ControllerConfig(runtime="numba"))


def test_wrong_observation_shape_and_bad_config_raise():
    controller = Controller(small_policy("mlp"))
    with pytest.raises(ValueError, match=r"expected \(5,\)"):
        controller(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="runtime"):
        ControllerConfig(runtime="onnx")
    with pytest.raises(ValueError, match="on_bad_obs"):
        ControllerConfig(on_bad_obs="ignore")
    with pytest.raises(ValueError, match="obs_limit"):
        ControllerConfig(obs_limit=0.0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_linoss_state_stays_bounded_over_20k_steps(variant):
    """Bounded for IM and D-LinOSS; for IMEX (|λ| = 1) at most random-walk growth, ~√t: from the
    second to the last quarter of the episode, √(4/2) ≈ 1.4, so a factor 2 allows for noise."""
    envelope = state_envelope(Controller(small_policy("linoss", variant=variant)), 20_480)
    assert envelope[-1] <= 2.0 * envelope[1], envelope


def test_state_envelope_detects_a_growing_mode():
    policy = small_policy("linoss", variant="imex", enforce_stability=False)
    with torch.no_grad():
        for layer in policy.backbone.layers():
            layer.A_diag.fill_(10.0)  # Δt²A ≈ 9.9 > 4: LinOSS-IMEX has a real eigenvalue |λ| > 1
            layer.steps.fill_(5.0)
    with pytest.raises(FloatingPointError, match="not finite"):
        state_envelope(Controller(policy), 20_480)


CAMERA = "observation.images.wrist"


def image_policy(name: str):
    cfg = PolicyConfig(backbone=name, d_model=32, image_features=8, backbone_kwargs=BACKBONE_KWARGS[name])
    return make_policy(cfg, OBS, ACT, 0.04, image_shape=(3, 24, 24), camera_keys=[CAMERA]).eval()


@pytest.mark.parametrize("name", ["linoss", "gru"])
def test_an_image_policy_deploys_and_exports_with_its_frames(name, tmp_path):
    policy = image_policy(name)
    controller = Controller(policy)
    assert controller.runtime == "torchscript"  # the numba runtime takes no frames
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(30, 5)).astype(np.float32)
    frames = rng.integers(0, 256, (30, 48, 48, 3), dtype=np.uint8)  # the camera's own size: resized to 24 x 24
    policy.reset(1)
    controller.reset()
    step, loaded = PolicyStep(policy), torch.jit.load(str(export_torchscript(PolicyStep(policy), tmp_path / "s.pt")))
    state = step.initial_state(1)
    for o, f in zip(obs, frames):
        images = torch.nn.functional.interpolate(torch.from_numpy(f).permute(2, 0, 1)[None].float(), size=(24, 24),
                                                 mode="bilinear", antialias=True, align_corners=False)  # fmt: skip
        images = images.round().clamp(0, 255).to(torch.uint8)
        expected = policy.act(o[None], images)[0].numpy()
        assert_actions_close(controller(o, {CAMERA: f}), expected)
        action, *state = loaded(torch.from_numpy(o)[None], images, *state)
        assert_actions_close(action.numpy()[0], expected)
    assert state_names(step)[0][:2] == ["obs", "images"]
    with pytest.raises(ValueError, match=r"observes the cameras \['observation.images.wrist'\]: pass their frames"):
        controller(obs[0])
    with pytest.raises(ValueError, match="was given \\['observation.images.top'\\]"):
        controller(obs[0], {"observation.images.top": frames[0]})
    with pytest.raises(ValueError, match="observes no camera"):
        Controller(small_policy(name))(obs[0], {CAMERA: frames[0]})
