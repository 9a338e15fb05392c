"""Recurrent PPO: the update re-runs rollout chunks exactly (resets inside chunks included), GAE, learning on
InvertedPendulum-v5, self-contained checkpoints, and exact resume."""

import importlib
import json

import numpy as np
import pytest
import torch

from cadence.configs import compose
from cadence.envs import make_env
from cadence.evaluation import evaluate
from cadence.policies import PolicyConfig, SequencePolicy, make_policy
from cadence.policies.backbones import REGISTRY
from cadence.training import train_ppo
from cadence.training.ppo import Batch, PPOConfig, PPOTrainer, gae
from cadence.training.seeds import EVAL_SEED, VALIDATION_SEED

ENV = "invertedpendulum"
# small, non-trivial sizes: a transformer context and an MLP frame stack shorter than a chunk
EXTRA = {"linoss": {"state_dim": 8}, "transformer": {"context": 5}, "mlp": {"frame_stack": 3}}
BACKBONES = [(name, EXTRA.get(name, {})) for name in sorted(REGISTRY) if name != "linoss"]
BACKBONES += [("linoss", EXTRA["linoss"] | {"variant": v}) for v in ("im", "imex", "damped")]


def make_trainer(tmp_path, backbone="mlp", backbone_kwargs=None, seed=0, init_seed=None, **algo):
    """A small trainer on InvertedPendulum-v5; ``init_seed`` (default ``seed``) draws the initial weights."""
    try:
        importlib.import_module(REGISTRY[backbone][0])
    except ImportError as e:
        pytest.skip(f"backbone module for {backbone!r} does not import yet: {e}")
    env = make_env(ENV)
    torch.manual_seed(seed if init_seed is None else init_seed)
    pcfg = PolicyConfig(backbone=backbone, d_model=16, head="gaussian",
                        backbone_kwargs={"n_layers": 2} | (backbone_kwargs or {}))  # fmt: skip
    policy = make_policy(pcfg, env.observation_space, env.action_space, env.unwrapped.dt)
    env.close()
    cfg = PPOConfig(**({"num_envs": 3, "num_steps": 24, "window": 12, "num_minibatches": 2, "update_epochs": 2,
                        "steps": 72, "eval_every": 0, "eval_episodes": 3, "eval_envs": 3} | algo))  # fmt: skip
    return PPOTrainer(policy, ENV, cfg, tmp_path, seed=seed)


@pytest.mark.parametrize("critic", ["shared", "separate"])
@pytest.mark.parametrize("backbone, kwargs", BACKBONES, ids=[f"{n}-{kw.get('variant', '')}" for n, kw in BACKBONES])
def test_update_rerun_of_chunks_with_resets_matches_rollout(tmp_path, backbone, kwargs, critic):
    """The update's parallel re-run of each chunk from its stored state, resets passed as masks, gives the
    log-probs and values the rollout computed step by step."""
    trainer = make_trainer(tmp_path, backbone, kwargs, critic=critic)
    trainer.start_episodes()
    trainer.train_iteration()  # non-trivial obs statistics and weights, and states carried across rollouts
    rollout = trainer.rollout()
    trainer.close()
    b = Batch.from_rollout(rollout, trainer.cfg.window)
    assert b.resets[:, 1:].any(), "no episode ended inside a chunk: the test would not exercise the masking"
    assert any(s.abs().sum() > 0 for s in b.states), "all stored states are zero: the test would not use them"
    with torch.no_grad():
        h_pi, h_v, _ = trainer.agent(b.obs, b.states, b.resets)
        _, logprobs, _, values = trainer.agent.get_action_and_value(h_pi, h_v, b.actions)
    torch.testing.assert_close(logprobs, b.logprobs, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(values, b.values, atol=1e-4, rtol=1e-4)


def test_gae_matches_the_discounted_sum_of_td_errors():
    g = torch.Generator().manual_seed(0)
    S, N, gamma, lam = 7, 3, 0.9, 0.8
    rewards, values = torch.randn(S, N, generator=g), torch.randn(S, N, generator=g)
    resets = torch.zeros(S, N, dtype=torch.bool)
    resets[3, 0] = resets[1, 2] = True
    next_value, next_reset = torch.randn(N, generator=g), torch.tensor([False, True, False])
    adv = gae(rewards, values, resets, next_value, next_reset, gamma, lam)
    ends = torch.cat([resets[1:], next_reset[None]])  # step t is its episode's last
    v_next = torch.cat([values[1:], next_value[None]])
    delta = rewards + gamma * v_next * ~ends - values
    for n in range(N):
        for t in range(S):
            expected, k = 0.0, t
            while True:  # A_t = Σ_k (γλ)^(k−t) δ_k until the episode (or the rollout) ends
                expected += (gamma * lam) ** (k - t) * delta[k, n].item()
                if ends[k, n] or k == S - 1:
                    break
                k += 1
            assert adv[t, n].item() == pytest.approx(expected, abs=1e-5)


def random_return(episodes: int, seed: int) -> float:
    env = make_env(ENV)
    env.action_space.seed(seed)
    returns = []
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        ret, done = 0.0, False
        while not done:
            _, r, terminated, truncated, _ = env.step(env.action_space.sample())
            ret, done = ret + r, terminated or truncated
        returns.append(ret)
    env.close()
    return float(np.mean(returns))


def test_learns_inverted_pendulum_and_saves_a_self_contained_policy(tmp_path):
    trainer = make_trainer(tmp_path, "mlp", {"frame_stack": 1}, num_envs=8, num_steps=128, window=32,
                           num_minibatches=4, update_epochs=10, steps=24_576, eval_episodes=10,
                           eval_envs=5)  # fmt: skip
    untrained = evaluate(trainer.policy, trainer.cfg.eval_envs * [lambda: make_env(ENV)], 10, seed=10_000).mean_return
    result = trainer.fit()
    trainer.close()
    baseline = max(random_return(10, seed=10_000), untrained)
    assert result["mean_return"] > 5 * baseline, (result["mean_return"], baseline)
    # checkpoints/best is a plain SequencePolicy checkpoint, chosen on validation episodes: normalization
    # inside, the same deterministic return on the validation episodes that chose it
    loaded = SequencePolicy.from_pretrained(tmp_path / "checkpoints" / "best")
    assert not torch.equal(loaded.obs_norm.std, torch.ones_like(loaded.obs_norm.std))
    chosen = max(trainer.history, key=lambda r: r["score"])
    again = evaluate(loaded, [lambda: make_env(ENV)] * 5, 10, seed=VALIDATION_SEED).mean_return
    assert again == pytest.approx(chosen["mean_return"])


def test_evaluations_follow_the_seed_plan(tmp_path):
    """Validation episodes during training (they pick ``best``); the reported score is the final policy's on the
    evaluation episodes, which nothing selects on."""
    trainer = make_trainer(tmp_path, seed=2, steps=144, eval_every=72)
    seeds = []
    real = trainer.evaluate
    trainer.evaluate = lambda base: seeds.append(base) or real(base)
    result = trainer.fit()
    trainer.close()
    assert seeds == [VALIDATION_SEED, VALIDATION_SEED, EVAL_SEED]
    assert result["validation"] == trainer.history[-1] and len(trainer.history) == 2
    final = evaluate(trainer.policy, [lambda: make_env(ENV)] * 3, 3, seed=EVAL_SEED + 2)
    assert result["returns"] == final.to_dict()["returns"]


def test_resume_continues_exactly(tmp_path):
    algo = {"save_every": 144, "steps": 288}  # 4 iterations of 3 envs × 24 steps, last written after 2 and 4
    straight = make_trainer(tmp_path / "a", "linoss", EXTRA["linoss"], seed=3, **algo)
    straight.fit()
    straight.close()
    # the same run, interrupted after iteration 2 (when fit writes checkpoints/last), resumed by a new process
    first = make_trainer(tmp_path / "b", "linoss", EXTRA["linoss"], seed=3, **algo)
    first.start_episodes()
    first.train_iteration()
    first.train_iteration()
    first.save_last()
    first.close()
    resumed = make_trainer(tmp_path / "b", "linoss", EXTRA["linoss"], seed=3, init_seed=99, **algo)
    assert resumed.resume() and resumed.iteration == 2
    resumed.fit()
    resumed.close()
    for (k, a), b in zip(straight.agent.state_dict().items(), resumed.agent.state_dict().values()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=k)
    assert straight.history[-1]["returns"] == resumed.history[-1]["returns"]


def test_config_and_policy_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="algo.window=32 must divide"):
        PPOConfig(num_steps=100, window=32)
    with pytest.raises(ValueError, match="num_minibatches"):
        PPOConfig(num_envs=3, num_steps=64, window=64, num_minibatches=2)
    env = make_env(ENV)
    deterministic = make_policy(PolicyConfig(backbone="mlp", d_model=8), env.observation_space, env.action_space)
    with pytest.raises(ValueError, match="policy.head=gaussian"):
        PPOTrainer(deterministic, ENV, PPOConfig(), tmp_path)


def test_train_ppo_from_the_hydra_configs(tmp_path):
    """``cadence-train algo=ppo``'s function on the shipped YAML: a run directory with checkpoints and eval.json,
    a refusal to overwrite it, and a clear error for a deterministic head."""
    overrides = ["algo=ppo", "policy=gru", "policy.head=gaussian", "policy.d_model=16", "env=invertedpendulum_p",
                 f"run_dir={tmp_path}", "algo.steps=128", "algo.num_envs=2", "algo.num_steps=32",
                 "algo.window=16", "algo.num_minibatches=2", "algo.update_epochs=1", "algo.eval_episodes=2",
                 "algo.eval_envs=2"]  # fmt: skip
    cfg = compose("train", overrides)
    deterministic = compose("train", overrides + ["policy.head=deterministic"])
    result = train_ppo(cfg)
    assert json.loads((tmp_path / "eval.json").read_text())["mean_return"] == result["mean_return"]
    assert SequencePolicy.from_pretrained(tmp_path / "checkpoints" / "last").cfg.backbone == "gru"
    assert (tmp_path / "checkpoints" / "best").is_dir()
    with pytest.raises(ValueError, match="resume=true"):
        train_ppo(cfg)
    deterministic.run_dir = str(tmp_path / "det")
    with pytest.raises(ValueError, match="policy.head=gaussian"):
        train_ppo(deterministic)
    renamed = compose("train", [o.replace("algo.steps", "+algo.total_steps") for o in overrides])
    renamed.run_dir = str(tmp_path / "renamed")
    with pytest.raises(ValueError, match=r"algo.total_steps is now algo.steps"):
        train_ppo(renamed)
