"""Recurrent PPO for a SequencePolicy with any backbone (CleanRL's ``ppo_continuous_action.py`` and
``ppo_atari_lstm.py`` in one module, generalized to the backbone protocol).

Symbols: N environments (``num_envs``), S rollout steps per environment (``num_steps``), T chunk length
(``window``), C = S / T chunks per environment, M = C·N sequences per rollout, O observation dim,
A action dim, D model width.

One iteration:

1. **Rollout.** The policy steps the N environments S times in its recurrent stepping mode
   (``backbone.step``), sampling actions from the gaussian head. Vector envs use
   ``AutoresetMode.SAME_STEP``: the observation returned with a done flag is the next episode's first,
   so ``resets[t]`` (the done flag of step t − 1) marks the steps whose state is zeroed before they are
   consumed. The backbone state is stored at the start of every chunk of T steps. A truncated episode
   (time limit) is bootstrapped: γ·V(``info["final_obs"]``), evaluated with the episode's own state,
   is added to its last reward.
2. **Advantages.** GAE(λ) over the S steps, bootstrapped from the value of the next observation.
3. **Update.** The rollout is cut into M sequences (chunk c of environment n is sequence c·N + n),
   each re-run with the parallel ``forward`` from its stored state; episode resets inside a sequence
   are handled by passing ``resets`` (M, T) to the resettable scan, so no step is dropped. Minibatches
   are sets of whole sequences (CleanRL's "minibatches by environment"); with ``window = num_steps``
   a sequence is an environment's whole rollout, exactly as in ``ppo_atari_lstm.py``. Loss: clipped
   surrogate, (clipped) value loss, entropy bonus; advantages normalized per minibatch.

The network is kept in eval mode throughout: the ratio π/π_old compares the update's log-probs with
the rollout's, so both must come from the same function (no dropout, no batch statistics).

Normalization lives in the checkpoint: observation running statistics are written into the policy's
``obs_norm`` buffers (frozen during an iteration, updated after it, so the rollout and its update see
the same statistics); the head's normalized action units map [-1, 1] onto the action bounds
(``action_norm``). Rewards are scaled by a running std of the discounted return and clipped, as
Gymnasium's ``NormalizeReward`` does; that only shapes training.

Evaluations follow the seed plan of :mod:`.seeds`, as in BC: those during training run on validation episodes
and pick ``best``; the reported score is the final policy's on the evaluation episodes, never used to select.
Each is recorded with ``step`` (environment steps) and ``train_s`` (seconds of rollouts and updates so far,
evaluations and checkpoint writes left out, as BC's clock leaves them out). Given the task's reference returns
(``reference``: the clean expert's and the floor policy's, as a BC dataset records them), evaluations also report
the normalized score, which is then their ``score`` (an increasing map of the mean return, so ``best`` is the same).

Checkpoints (:mod:`.checkpoint`): ``best`` (the highest deterministic validation score) and ``last`` (with
the resume state: network, value head, critic, optimizer, schedule, statistics and the sampling generator)
are ``save_pretrained`` directories of the policy, so any Cadence tool can load them. Environment state cannot be saved, so every ``fit`` and every write of
``last`` starts fresh episodes, seeded from (seed, iteration): a resumed run is the uninterrupted run,
step for step. The cut episodes are bootstrapped like any rollout end and left out of episodic stats.

Data parallel (``torchrun``, :mod:`cadence.training.distributed`): ``num_envs``, ``steps`` and
the batch stay global. Each of the W ranks steps its own N / W environments (sub-env n of rank r is
global environment r·N/W + n and is seeded as in one process), samples from ``seed + rank``, cuts its
rollout into M / W sequences and minibatches them; DDP averages the gradients. Observation statistics
are folded from all ranks' rollouts, so the policies stay identical; the reward scale and the
per-minibatch advantage normalization are per rank (as in CleanRL's multi-GPU PPO), and training
return curves come from rank 0's environments. Rank 0 alone logs, evaluates and writes checkpoints; a
resumed rank > 0 reseeds its sampling generator from (seed, rank, iteration).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import ClassVar
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers.utils import RunningMeanStd
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..envs import make_env, make_vector_env
from ..evaluation import evaluate
from ..policies import SequencePolicy
from ..policies.backbones import State, cat_states, index_state, reset_state
from ..progress import progress_bar
from .checkpoint import Checkpoints
from .distributed import Distributed
from .optim import RECURRENCE, adamw, param_groups, scheduler
from .seeds import EVAL_SEED, VALIDATION_SEED
from .tensorboard import Scalars

log = logging.getLogger(__name__)
CRITICS = ("shared", "separate")


@dataclass
class PPOConfig:
    """PPO hyperparameters (``cadence/configs/algo/ppo.yaml``); defaults follow CleanRL's MuJoCo PPO."""

    RENAMED: ClassVar[dict[str, str]] = {"total_steps": "steps", "seq_len": "window", "max_grad_norm": "grad_clip"}

    steps: int = 1_000_000
    """Environment steps over all environments (every ``*_every`` counts environment steps too)."""
    num_envs: int = 8
    """N, parallel environments."""
    num_steps: int = 256
    """S, steps per environment per rollout (batch = N·S steps)."""
    window: int = 64
    """T, steps per training sequence; the backbone state is stored every T steps. Divides num_steps."""
    num_minibatches: int = 4
    """Minibatches per epoch; each holds M / num_minibatches whole sequences. Divides M = N·S/T."""
    update_epochs: int = 10
    """Passes over the rollout per iteration."""
    lr: float = 3e-4
    """Adam learning rate."""
    backbone_lr: float | None = None
    """Learning rate of the backbone(s); None uses ``lr``."""
    recurrence_lr_factor: float = 1.0
    """The backbone's recurrence parameters (LinOSS: A, G, Δt; Mamba: A_log, Δ, D) train at this × the
    backbone's learning rate."""
    anneal_lr: bool = True
    """Cosine decay of the learning rates to zero over the run."""
    weight_decay: float = 0.0
    """AdamW weight decay (matrices only, as in BC)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """λ of GAE."""
    clip_coef: float = 0.2
    """Surrogate clipping range ε."""
    clip_vloss: bool = True
    """Clip the value update to ±clip_coef around the rollout's value."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    grad_clip: float = 0.5
    """Max global gradient norm."""
    target_kl: float | None = None
    """Stop the iteration's epochs once the approximate KL exceeds this; None never stops early."""
    norm_adv: bool = True
    """Normalize advantages per minibatch."""
    norm_obs: bool = True
    """Keep running observation statistics in the policy's ``obs_norm``."""
    norm_reward: bool = True
    """Scale rewards by the running std of the discounted return."""
    reward_clip: float = 10.0
    """Clip normalized rewards to ±reward_clip."""
    critic: str = "shared"
    """"shared": the value head reads the policy's backbone features; "separate": its own encoder and backbone."""
    asynchronous: bool = False
    """AsyncVectorEnv (each sub-env in its own worker process) for collection and evaluation, not SyncVectorEnv."""
    eval_every: int = 50_000
    """Deterministic evaluation every this many environment steps (and at the end); 0: only at the end."""
    eval_episodes: int = 10
    """Episodes per evaluation."""
    eval_envs: int = 5
    """Sub-envs of the evaluation vector env."""
    save_every: int = 100_000
    """Environment steps between writes of checkpoints/last (also written at the end)."""

    def __post_init__(self):
        for name in ("steps", "num_envs", "num_steps", "window", "num_minibatches", "update_epochs",
                     "eval_episodes", "eval_envs", "save_every"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"algo.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_steps % self.window:
            raise ValueError(f"algo.window={self.window} must divide algo.num_steps={self.num_steps}")
        if self.num_sequences % self.num_minibatches:
            raise ValueError(f"algo.num_minibatches={self.num_minibatches} must divide the {self.num_sequences} "
                             f"sequences per rollout (num_envs·num_steps/window)")  # fmt: skip
        if self.steps < self.batch_size:
            raise ValueError(f"algo.steps={self.steps} is less than one rollout "
                             f"(num_envs·num_steps = {self.batch_size})")  # fmt: skip
        if self.critic not in CRITICS:
            raise ValueError(f"algo.critic {self.critic!r} is not one of {CRITICS}")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"algo.gamma={self.gamma} must be in (0, 1] and algo.gae_lambda={self.gae_lambda} "
                             "in [0, 1]")  # fmt: skip
        if self.eval_every < 0:
            raise ValueError(f"algo.eval_every must be >= 0, got {self.eval_every}")

    # derived sizes
    @property
    def batch_size(self) -> int:
        """N·S environment steps per iteration."""
        return self.num_envs * self.num_steps

    @property
    def num_sequences(self) -> int:
        """M = N·S/T training sequences per iteration."""
        return self.batch_size // self.window

    @property
    def num_iterations(self) -> int:
        return self.steps // self.batch_size


# -------------------------------------------------------------------------------------- the agent
class ActorCritic(nn.Module):
    """The policy and a value head, on the policy's features or on a separate critic network.

    The recurrent state is one flat tuple of batch-first tensors: the policy's, then the critic's when
    it is separate (a second SequencePolicy of the same architecture whose action head is unused), so
    ``reset_state``/``index_state``/``cat_states`` apply to it unchanged.
    """

    def __init__(self, policy: SequencePolicy, critic: str = "shared"):
        super().__init__()
        self.policy = policy
        self.critic = None
        if critic == "separate":
            self.critic = SequencePolicy(policy.cfg, policy.obs_dim, policy.act_dim, policy.action_low.tolist(),
                                         policy.action_high.tolist(), policy.control_period)  # fmt: skip
        D = policy.cfg.d_model
        self.value_head = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, 1))
        # CleanRL's layer_init: orthogonal weights, std 0.01 for the action mean (actions start near the
        # center of the bounds), 1.0 for the value
        nn.init.orthogonal_(policy.head.mean.weight, 0.01)
        nn.init.zeros_(policy.head.mean.bias)
        nn.init.orthogonal_(self.value_head[1].weight, 1.0)
        nn.init.zeros_(self.value_head[1].bias)
        self.n_policy_state = len(policy.initial_state(1))

    @property
    def networks(self) -> list[SequencePolicy]:
        """The policy, then the critic when it is separate."""
        return [self.policy] if self.critic is None else [self.policy, self.critic]

    def initial_state(self, batch_size: int) -> State:
        return sum((net.initial_state(batch_size) for net in self.networks), ())

    def _per_network(self, state: State, run) -> tuple[Tensor, Tensor, State]:
        """Apply ``run(net, net_state) -> (h, new_state)`` to each network; (h_pi, h_v, new state)."""
        k = self.n_policy_state
        states = [state] if self.critic is None else [state[:k], state[k:]]
        outs = [run(net, s) for net, s in zip(self.networks, states)]
        return outs[0][0], outs[-1][0], sum((s for _, s in outs), ())

    def forward(self, obs: Tensor, state: State, resets: Tensor) -> tuple[Tensor, Tensor, State]:
        """Sequences: obs (B, T, O), resets (B, T) bool -> (h_pi (B, T, D), h_v (B, T, D), final state)."""
        return self._per_network(state, lambda net, s: net.features(obs, s, resets))

    def step(self, obs: Tensor, state: State, resets: Tensor) -> tuple[Tensor, Tensor, State]:
        """One step: obs (B, O), resets (B,) bool -> (h_pi (B, D), h_v (B, D), new state).

        Same function as ``forward`` over T = 1, through the backbones' faster stepping mode.
        """

        return self._per_network(state, lambda net, s: net.step_features(obs, reset_state(s, resets)))

    def get_value(self, h_v: Tensor) -> Tensor:
        """h_v (…, D) -> value (…)."""
        return self.value_head(h_v).squeeze(-1)

    def get_action_and_value(self, h_pi: Tensor, h_v: Tensor, action: Tensor | None = None,
                             generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Features (…, D) -> (action (…, A), log-prob (…), entropy (…), value (…)).

        Samples the action (normalized units) from ``generator`` when ``action`` is None, else scores it.
        """
        mean = self.policy.head(h_pi)
        dist = self.policy.head.distribution(mean)
        if action is None:
            action = mean + dist.stddev * torch.randn(mean.shape, generator=generator, device=mean.device)
        return action, dist.log_prob(action), dist.entropy(), self.get_value(h_v)

    def set_obs_stats(self, rms: RunningMeanStd) -> None:
        """Write running observation statistics into every network's ``obs_norm``."""
        for net in self.networks:
            net.obs_norm.set_stats(rms.mean, np.sqrt(rms.var + 1e-8))


class ScoreActions(nn.Module):
    """Re-scores stored actions: the update's forward as one module, so that DDP wraps all of it."""

    def __init__(self, agent: ActorCritic):
        super().__init__()
        self.agent = agent

    def forward(self, obs: Tensor, state: State, resets: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """obs (B, T, O), resets (B, T), actions (B, T, A) -> (log-prob, entropy, value), each (B, T)."""
        h_pi, h_v, _ = self.agent(obs, state, resets)
        _, logprob, entropy, value = self.agent.get_action_and_value(h_pi, h_v, actions)
        return logprob, entropy, value


# -------------------------------------------------------------------------------------- pure math
def gae(rewards: Tensor, values: Tensor, resets: Tensor, next_value: Tensor, next_reset: Tensor,
        gamma: float, lam: float) -> Tensor:  # fmt: skip
    """Advantages (S, N) from rewards, values, resets (S, N) and the value / reset flag (N,) of the step
    after the rollout; ``resets[t + 1]`` ends the episode of step t (no bootstrap across it)."""
    S = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(next_value)
    for t in reversed(range(S)):
        nextnonterminal = 1.0 - (next_reset if t == S - 1 else resets[t + 1]).float()
        nextvalues = next_value if t == S - 1 else values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
    return advantages


def to_sequences(x: Tensor, T: int) -> Tensor:
    """(S, N, …) -> (C·N, T, …) with C = S / T: chunk c of environment n becomes row c·N + n."""
    S, N = x.shape[:2]
    return x.reshape(S // T, T, N, *x.shape[2:]).transpose(1, 2).reshape(S // T * N, T, *x.shape[2:])


def explained_variance(y_pred: Tensor, y_true: Tensor) -> float:
    """1 − Var[y − ŷ] / Var[y] (NaN when the targets are constant)."""
    var_y = y_true.var()
    return float("nan") if var_y == 0 else (1 - (y_true - y_pred).var() / var_y).item()


# -------------------------------------------------------------------------------------- buffers
@dataclass
class Rollout:
    """One iteration's data in CleanRL's (S, N, …) layout, plus the state at every chunk start."""

    obs: Tensor
    """(S, N, O) raw observations."""
    actions: Tensor
    """(S, N, A) sampled actions, normalized units (before clipping to the bounds)."""
    logprobs: Tensor
    """(S, N) log-probs of the actions at sampling time."""
    rewards: Tensor
    """(S, N) normalized rewards, truncation bootstrap included."""
    resets: Tensor
    """(S, N) bool: step t starts an episode (its state is zeroed before it is consumed)."""
    values: Tensor
    """(S, N) value estimates at sampling time."""
    chunk_states: list[State]
    """C states, each (N, …) per tensor: the state before step c·T (before its reset, if any)."""
    advantages: Tensor
    """(S, N) GAE advantages."""


@dataclass
class Batch:
    """A rollout as M training sequences (the ``b_`` arrays), each (M, T, …); ``states`` (M, …)."""

    obs: Tensor
    actions: Tensor
    logprobs: Tensor
    resets: Tensor
    values: Tensor
    advantages: Tensor
    returns: Tensor
    states: State

    @classmethod
    def from_rollout(cls, r: Rollout, T: int) -> Batch:
        seq = partial(to_sequences, T=T)
        return cls(obs=seq(r.obs), actions=seq(r.actions), logprobs=seq(r.logprobs), resets=seq(r.resets),
                   values=seq(r.values), advantages=seq(r.advantages), returns=seq(r.advantages + r.values),
                   states=cat_states(r.chunk_states))  # fmt: skip


# -------------------------------------------------------------------------------------- trainer
class PPOTrainer:
    """Trains ``policy`` (gaussian head) on the task of ``env_cfg`` (module docstring)."""

    def __init__(self, policy: SequencePolicy, env_cfg, cfg: PPOConfig, run_dir: str | Path, seed: int = 0,
                 device: str | torch.device = "cpu", run_info: dict | None = None,
                 reference: tuple[float, float] | None = None):  # fmt: skip
        if policy.head.log_std is None:
            raise ValueError("algo=ppo samples actions from the policy: set policy.head=gaussian")
        low, high = policy.action_low, policy.action_high
        if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ValueError(f"algo=ppo maps actions onto the bounds, which must be finite; got {low.tolist()} / "
                             f"{high.tolist()}")  # fmt: skip
        self.cfg, self.env_cfg, self.run_dir, self.seed = cfg, env_cfg, Path(run_dir), seed
        self.reference = reference  # (expert, floor) returns: evaluations report normalized scores and rank by them
        self.device, self.dist = torch.device(device), Distributed.current()
        self.envs_slice = self.dist.shard(cfg.num_envs, "algo.num_envs")  # this rank's environments
        self.num_envs = self.envs_slice.stop - self.envs_slice.start
        if cfg.num_sequences // self.dist.world_size % cfg.num_minibatches:
            raise ValueError(f"algo.num_minibatches={cfg.num_minibatches} must divide each rank's "
                             f"{cfg.num_sequences // self.dist.world_size} sequences (num_envs·num_steps/window "
                             f"over {self.dist.world_size} processes)")  # fmt: skip
        policy.action_norm.set_stats((high + low) / 2, (high - low) / 2)  # normalized ±1 = the bounds
        self.agent = ActorCritic(policy, cfg.critic).to(self.device).eval()  # one mode: see the module docstring
        self.policy = self.agent.policy
        self.score = ScoreActions(self.agent)
        if self.dist.enabled:  # gradients averaged over ranks
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.score = DistributedDataParallel(self.score, device_ids=device_ids)
        self.gen = torch.Generator(self.device).manual_seed(seed + self.dist.rank)
        self.opt = adamw(self.param_groups(), cfg.lr)
        self.sched = scheduler(self.opt, 0, cfg.num_iterations, cfg.anneal_lr)
        self.envs = make_vector_env(env_cfg, self.num_envs, cfg.asynchronous,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)  # fmt: skip
        self.obs_rms = RunningMeanStd(shape=(policy.obs_dim,))
        self.ret_rms = RunningMeanStd(shape=())
        self.ckpt = Checkpoints(self.run_dir, run_info, self.dist.is_main)
        self.iteration, self.global_step, self.history = 0, 0, []
        self.train_s = 0.0  # seconds of rollouts and updates so far (evaluations and checkpoints not counted)

    def param_groups(self) -> list[dict]:
        """The optimizer's groups (:mod:`.optim`): the backbone(s) at ``backbone_lr`` (their recurrence
        parameters at ``recurrence_lr_factor`` × that), everything else at ``lr``."""
        c = self.cfg
        backbones = nn.ModuleList(net.backbone for net in self.agent.networks)
        in_backbone = {id(p) for p in backbones.parameters()}
        rest = nn.ParameterList(p for p in self.agent.parameters() if id(p) not in in_backbone)
        backbone_lr = c.backbone_lr if c.backbone_lr is not None else c.lr
        return (param_groups(rest, c.weight_decay, c.lr)
                + param_groups(backbones, c.weight_decay, backbone_lr, {RECURRENCE: c.recurrence_lr_factor}))

    def close(self) -> None:
        self.envs.close()

    # ------------------------------------------------------------------ rollout
    def start_episodes(self) -> None:
        """Reset every environment (seeded by seed and iteration) and the recurrent and return state."""
        N = self.num_envs
        seed = int(np.random.SeedSequence([self.seed, self.iteration]).generate_state(1)[0])
        obs, _ = self.envs.reset(seed=seed + self.envs_slice.start)  # sub-env n is seeded seed + n
        self.next_obs = self._tensor(obs)
        self.next_reset = torch.ones(N, dtype=torch.bool, device=self.device)
        self.state = self.agent.initial_state(N)
        self.discounted_return = np.zeros(N)  # NormalizeReward's accumulator
        self.ep_return, self.ep_length = np.zeros(N), np.zeros(N, dtype=int)
        self.episodes: list[tuple[float, int]] = []

    def _tensor(self, x: np.ndarray) -> Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def _normalize_reward(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Gymnasium's NormalizeReward: reward / std of the running discounted return, then clipped."""
        c = self.cfg
        if not c.norm_reward:
            return reward
        self.discounted_return = self.discounted_return * c.gamma * (1 - done) + reward
        self.ret_rms.update(self.discounted_return)
        return np.clip(reward / np.sqrt(self.ret_rms.var + 1e-8), -c.reward_clip, c.reward_clip)

    @torch.no_grad()
    def rollout(self) -> Rollout:
        """S steps of the N environments from where the last rollout stopped, with advantages."""
        c, p = self.cfg, self.policy
        S, N, T = c.num_steps, self.num_envs, c.window
        obs = torch.zeros(S, N, p.obs_dim, device=self.device)
        actions = torch.zeros(S, N, p.act_dim, device=self.device)
        logprobs, rewards, values = (torch.zeros(S, N, device=self.device) for _ in range(3))
        resets = torch.zeros(S, N, dtype=torch.bool, device=self.device)
        chunk_states = []
        for t in range(S):
            if t % T == 0:
                chunk_states.append(self.state)
            obs[t], resets[t] = self.next_obs, self.next_reset
            h_pi, h_v, self.state = self.agent.step(self.next_obs, self.state, self.next_reset)
            actions[t], logprobs[t], _, values[t] = self.agent.get_action_and_value(h_pi, h_v, generator=self.gen)
            next_obs, reward, terminated, truncated, info = self.envs.step(p.to_env_action(actions[t]).cpu().numpy())
            done = terminated | truncated
            self._track_episodes(reward, done)
            reward = self._tensor(self._normalize_reward(reward, done))
            cut = np.flatnonzero(truncated & ~terminated)
            if cut.size:  # time limit: bootstrap from the final observation, with the episode's own state
                final_obs = self._tensor(np.stack(info["final_obs"][cut]))
                no_reset = torch.zeros(cut.size, dtype=torch.bool, device=self.device)
                _, h_v_final, _ = self.agent.step(final_obs, index_state(self.state, torch.as_tensor(cut)), no_reset)
                reward[cut] += c.gamma * self.agent.get_value(h_v_final)
            rewards[t] = reward
            self.next_obs, self.next_reset = self._tensor(next_obs), torch.as_tensor(done, device=self.device)
        _, h_v, _ = self.agent.step(self.next_obs, self.state, self.next_reset)
        advantages = gae(rewards, values, resets, self.agent.get_value(h_v), self.next_reset, c.gamma, c.gae_lambda)
        return Rollout(obs, actions, logprobs, rewards, resets, values, chunk_states, advantages)

    def _track_episodes(self, reward: np.ndarray, done: np.ndarray) -> None:
        """Raw episodic return and length of the episodes the environments ended."""
        self.ep_return += reward
        self.ep_length += 1
        for i in np.flatnonzero(done):
            self.episodes.append((float(self.ep_return[i]), int(self.ep_length[i])))
        self.ep_return[done], self.ep_length[done] = 0.0, 0

    # ------------------------------------------------------------------ update
    def update(self, b: Batch) -> dict:
        """``update_epochs`` passes of minibatched PPO over the M sequences of ``b``; returns log scalars."""
        c = self.cfg
        clipfracs, approx_kl = [], torch.zeros(())
        for _ in range(c.update_epochs):
            perm = torch.randperm(b.obs.shape[0], generator=self.gen, device=self.device)
            for mb_inds in perm.chunk(c.num_minibatches):
                newlogprob, entropy, newvalue = self.score(b.obs[mb_inds], index_state(b.states, mb_inds),
                                                           b.resets[mb_inds], b.actions[mb_inds])  # fmt: skip
                logratio = newlogprob - b.logprobs[mb_inds]
                ratio = logratio.exp()
                with torch.no_grad():  # http://joschu.net/blog/kl-approx.html
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs.append(((ratio - 1.0).abs() > c.clip_coef).float().mean().item())

                mb_advantages = b.advantages[mb_inds]
                if c.norm_adv:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                pg_loss = torch.max(-mb_advantages * ratio,
                                    -mb_advantages * ratio.clamp(1 - c.clip_coef, 1 + c.clip_coef)).mean()  # fmt: skip

                mb_returns, mb_values = b.returns[mb_inds], b.values[mb_inds]
                v_loss = (newvalue - mb_returns) ** 2
                if c.clip_vloss:
                    v_clipped = mb_values + (newvalue - mb_values).clamp(-c.clip_coef, c.clip_coef)
                    v_loss = torch.max(v_loss, (v_clipped - mb_returns) ** 2)
                v_loss = 0.5 * v_loss.mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - c.ent_coef * entropy_loss + v_loss * c.vf_coef
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"PPO loss became {loss.item()} at iteration {self.iteration}; "
                                             "lower algo.lr or check the environment's observations")  # fmt: skip
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.agent.parameters(), c.grad_clip)
                self.opt.step()
            if c.target_kl is not None and self.dist.mean(approx_kl) > c.target_kl:  # every rank stops together
                break
        self.sched.step()
        return {"value_loss": v_loss.item(), "policy_loss": pg_loss.item(), "entropy": entropy_loss.item(),
                "old_approx_kl": old_approx_kl.item(), "approx_kl": approx_kl.item(),
                "clipfrac": float(np.mean(clipfracs)), "explained_variance": explained_variance(b.values, b.returns),
                "lr": self.sched.get_last_lr()[0]}  # fmt: skip

    def update_obs_stats(self, obs: Tensor) -> None:
        """Fold the rollout's observations (S, N, O) of every rank into the running statistics and the
        policy's obs_norm."""
        if self.cfg.norm_obs:
            obs = self.dist.all_gather(obs.transpose(0, 1).contiguous()).transpose(0, 1)  # (S, N·W, O) on W ranks
            self.obs_rms.update(obs.reshape(-1, obs.shape[-1]).double().cpu().numpy())
            self.agent.set_obs_stats(self.obs_rms)

    # ------------------------------------------------------------------ checkpoints
    def save_last(self) -> None:
        """Write ``checkpoints/last`` with the resume state (rank 0)."""
        rms = {f"{name}_{k}": torch.as_tensor(getattr(getattr(self, name), k), dtype=torch.float64)
               for name in ("obs_rms", "ret_rms") for k in ("mean", "var", "count")}  # fmt: skip
        state = {"iteration": self.iteration, "global_step": self.global_step, "train_s": self.train_s,
                 "agent": self.agent.state_dict(),
                 "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                 "generator": self.gen.get_state()} | rms  # fmt: skip
        self.ckpt.save("last", self.policy, self.global_step, self.history, state)

    def resume(self) -> bool:
        """Load ``checkpoints/last`` if present; returns whether a run was resumed."""
        loaded = self.ckpt.load_last(self.device)
        if loaded is None:
            return False
        s, self.history = loaded
        self.agent.load_state_dict(s["agent"])
        self.opt.load_state_dict(s["optimizer"])
        self.sched.load_state_dict(s["scheduler"])
        self.gen.set_state(s["generator"].cpu())
        if self.dist.rank > 0:  # the checkpoint holds rank 0's generator
            entropy = [self.seed, self.dist.rank, s["iteration"]]
            self.gen.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))
        for name in ("obs_rms", "ret_rms"):
            rms = getattr(self, name)
            rms.mean, rms.var = s[f"{name}_mean"].numpy(), s[f"{name}_var"].numpy()
            rms.count = s[f"{name}_count"].item()
        self.iteration, self.global_step = s["iteration"], s["global_step"]
        self.train_s = float(s.get("train_s", 0.0))  # checkpoints written before it was recorded have none
        log.info("resumed %s at iteration %d (%d steps)", self.run_dir, self.iteration, self.global_step)
        return True

    # ------------------------------------------------------------------ training
    def evaluate(self, base: int) -> dict:
        """Deterministic (mean-action) episodes of the policy on the env seeds from ``base`` (:mod:`.seeds`)."""
        c = self.cfg
        env_fns = [partial(make_env, self.env_cfg) for _ in range(c.eval_envs)]
        result = evaluate(self.policy, env_fns, c.eval_episodes, seed=base + self.seed, asynchronous=c.asynchronous,
                          reference=self.reference)  # fmt: skip
        return result.to_dict() | {"step": self.global_step, "train_s": self.train_s}

    def run_eval(self) -> dict:
        """An evaluation on validation episodes; the best score is saved to checkpoints/best."""
        result = self.evaluate(VALIDATION_SEED)
        self.ckpt.record(result, self.policy, self.global_step, self.history)
        return result

    def train_iteration(self) -> dict:
        """Rollout, update, observation statistics; returns the update's log scalars and timings."""
        c = self.cfg
        t0 = time.perf_counter()
        rollout = self.rollout()
        t1 = time.perf_counter()
        metrics = self.update(Batch.from_rollout(rollout, c.window))
        self.update_obs_stats(rollout.obs)
        self.iteration += 1
        self.global_step += c.batch_size
        t2 = time.perf_counter()
        self.train_s += t2 - t0
        return metrics | {"rollout_s": t1 - t0, "update_s": t2 - t1}

    def _crossed(self, every: int) -> bool:
        """Whether the last iteration passed a multiple of ``every`` environment steps."""
        return every > 0 and self.global_step // every > (self.global_step - self.cfg.batch_size) // every

    def fit(self) -> dict:
        """Train to ``steps``; returns the final policy's evaluation on the evaluation episodes (the last validation
        evaluation under ``validation``; {} when ``eval_every`` never came) plus training return and steps/s."""
        c, main = self.cfg, self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        scalars = Scalars(self.run_dir, self.global_step, main)
        last_eval: dict = self.history[-1] if self.history else {}
        recent: list[tuple[float, int]] = []
        start_step, t0, sps = self.global_step, time.perf_counter(), float("nan")
        self.start_episodes()
        total = c.num_iterations * c.batch_size
        with progress_bar(total=total, initial=self.global_step, description="ppo", disable=not main) as bar:
            while self.iteration < c.num_iterations:
                metrics = self.train_iteration()
                sps = (self.global_step - start_step) / (time.perf_counter() - t0)
                metrics["steps_per_s"] = sps
                if self.episodes:
                    recent = self.episodes[-20:]
                    metrics |= {"episodic_return": float(np.mean([r for r, _ in self.episodes])),
                                "episodic_length": float(np.mean([n for _, n in self.episodes]))}  # fmt: skip
                    self.episodes = []
                scalars.train(metrics, self.global_step)
                end = self.iteration == c.num_iterations
                if main and (end or self._crossed(c.eval_every)):
                    last_eval = self.run_eval()
                    scalars.eval(last_eval, self.global_step)
                if end or self._crossed(c.save_every):
                    self.save_last()
                    self.start_episodes()
                bar.set_postfix(ret=f"{metrics.get('episodic_return', float('nan')):.1f}", sps=f"{sps:.0f}")
                bar.update(c.batch_size)
        scalars.close()
        final = self.evaluate(EVAL_SEED) | {"validation": last_eval} if main and last_eval else {}
        train_return = float(np.mean([r for r, _ in recent])) if recent else float("nan")
        return self.dist.broadcast(final | {"train_return": train_return, "steps_per_s": sps})

