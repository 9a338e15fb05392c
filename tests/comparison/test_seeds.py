"""Held-out seeds (issue 20): tuning and validation never touch an evaluation seed, neither as a training seed
nor as an env seed of an episode, in every shipped grid; a grid that would is refused; BC picks its checkpoint
on validation episodes and reports its last checkpoint on the evaluation episodes."""

import inspect
from pathlib import Path

import pytest

import cadence.training.run as run
from cadence.comparison import Arm, Cell, train_config
from cadence.comparison.grid import check_grid, task_settings
from cadence.configs import CONFIG_DIR, compose
from cadence.datasets.collect import CLEAN, MAIN, RANDOM, collect_dataset, episode_rng
from cadence.training import train_bc
from cadence.training.seeds import EVAL_SEED, TUNING_SEED, VALIDATION_SEED, episode_seeds, seed_clashes

REFERENCE_EPISODES = inspect.signature(collect_dataset).parameters["reference_episodes"].default
"""The reference episodes of a grid's datasets (``dataset_for`` keeps ``collect_dataset``'s default)."""


def demonstration_seeds(episodes: int, reference: int, seed: int = 0) -> set[int]:
    """The reset seeds of a grid's demonstrations (collected with seed 0) and of their reference returns."""
    return {episode_rng(seed, stream, e)[0] for stream, n in ((MAIN, episodes), (CLEAN, reference), (RANDOM, reference))
            for e in range(n)}  # fmt: skip


@pytest.mark.parametrize("profile", sorted(p.stem for p in (CONFIG_DIR / "profile").glob("*.yaml")))
def test_no_tuning_or_validation_seed_of_a_shipped_grid_is_an_evaluation_seed(profile):
    cfg = compose("compare", [f"profile={profile}"])
    tasks = [*cfg.tasks, *([cfg.lr_sweep.task] if cfg.lr_sweep else [])]
    envs = max(task_settings(cfg, t)[1]["eval_envs"] for t in tasks)
    episodes = max(task_settings(cfg, t)[0].episodes for t in tasks)
    tuning = list(cfg.lr_sweep.seeds) if cfg.lr_sweep else []
    assert all(s >= TUNING_SEED for s in tuning) and all(s < TUNING_SEED for s in cfg.seeds)
    assert seed_clashes(cfg.seeds, tuning, envs, demonstration_seeds(episodes, REFERENCE_EPISODES)) == []
    final = set().union(*(episode_seeds(EVAL_SEED, s, envs) for s in cfg.seeds))
    held_out = set().union(*(episode_seeds(VALIDATION_SEED, s, envs) for s in [*cfg.seeds, *tuning]),
                           *(episode_seeds(EVAL_SEED, s, envs) for s in tuning))  # fmt: skip
    assert final and held_out and not final & held_out
    check_grid(cfg)


def test_every_clash_of_held_out_and_evaluation_seeds_is_named():
    assert seed_clashes([0, 1], [1], 1) == ["tuning seed 1 is an evaluation seed",
                                            "evaluation episodes of tuning seed 1 use env seed(s) [10001] of the final "
                                            "evaluation"]  # fmt: skip
    assert seed_clashes([0], [3], 5) == ["evaluation episodes of tuning seed 3 use env seed(s) [10003, 10004] of the "
                                         "final evaluation"]  # fmt: skip: 5 sub-envs from 10_003 meet 10_000..10_004
    assert seed_clashes([0, 10_000], [], 1) == ["validation episodes of seed 0 use env seed(s) [20000] of the final "
                                                "evaluation"]  # fmt: skip
    assert seed_clashes([0], [], 2, demo_seeds={7, 10_001}) == ["the demonstrations use env seed(s) [10001] of the "
                                                                "final evaluation"]  # fmt: skip
    assert seed_clashes([0, 1, 2, 3, 4], [100], 5) == []


def test_a_sweep_on_an_evaluation_seed_is_refused():
    with pytest.raises(ValueError, match=r"tuning seed 3 is an evaluation seed.*from 100 \(lr_sweep\.seeds\)"):
        check_grid(compose("compare", ["seeds=[0,3]", "lr_sweep.seeds=[100,3]"]))  # a second tuning seed too
    with pytest.raises(ValueError, match=r"evaluation episodes of tuning seed 1 use env seed\(s\) \[10001"):
        check_grid(compose("compare", ["seeds=[0]", "lr_sweep.seeds=[1]"]))  # 5 sub-envs from 10_001 meet seed 0's


def test_bc_picks_its_checkpoint_on_validation_episodes_and_reports_the_last_on_evaluation_episodes(
        dataset, tmp_path, monkeypatch):  # fmt: skip
    seeds = []
    evaluate = run.evaluate
    monkeypatch.setattr(run, "evaluate", lambda *a, seed, **kw: seeds.append(seed) or evaluate(*a, seed=seed, **kw))
    train = {"steps": 4, "batch_size": 4, "window": 4, "eval_every": 2, "eval_episodes": 1, "eval_envs": 1}
    cfg = train_config(Cell(dataset.name, "mlp", 3), Arm("mlp", "mlp"), tmp_path, dataset, 5000, train)
    result = train_bc(cfg)
    assert seeds == [VALIDATION_SEED + 3, VALIDATION_SEED + 3, EVAL_SEED + 3]  # every 2 steps, then the final one
    assert (result["eval_seed"], result["validation_seed"]) == (EVAL_SEED + 3, VALIDATION_SEED + 3)
    assert result["validation"] == result["history"][-1] and result["step"] == 4
    assert (Path(cfg.run_dir) / "checkpoints" / "best").exists()
