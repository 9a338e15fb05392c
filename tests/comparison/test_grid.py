"""The grid spec: the shipped grid config (profiles, ablation arms), arm names with their tuned values, the
tuning (the learning-rate sweep, each arm's search space, one trial budget for all, the choice), the cell ids of a
multirun and per-task settings."""

import math

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from cadence.comparison import (Cell, LRSweep, SearchSpace, arm_name, grid_cells, resolve_arms, resolve_task, sweep_step,
                                task_settings)  # fmt: skip
from cadence.comparison.grid import SweepStep, check_grid, interior_step, tag_key
from cadence.configs import compose, to_dataclass
from cadence.policies.backbones import make_backbone

TASK = "invertedpendulum_p"


def test_quick_profile_and_command_line_overrides():
    quick = compose("compare", ["profile=quick"])
    mine = compose("compare", ["profile=quick", "seeds=[3,4]", "train.steps=7"])
    full = compose("compare")
    assert list(quick.seeds) == [0] and quick.train.steps == 1000 and quick.train.batch_size == full.train.batch_size
    assert list(mine.seeds) == [3, 4] and mine.train.steps == 7  # the command line wins over the profile
    assert len(full.seeds) >= 5 and len(full.tasks) > len(quick.tasks)


def test_every_shipped_arm_composes_into_a_train_config():
    """A typo in an ablation arm's override key fails here, not hours into a grid."""
    cfg = compose("compare", [f"backbones=[{','.join(['linoss', 'gru'])}]"])
    arms = resolve_arms(list(cfg.arms), cfg.arms)
    assert {a.name for a in arms} >= {"linoss_uniform", "linoss_ring", "linoss_data", "linoss_im", "linoss_imex"}
    for arm in arms:
        train = compose("train", ["algo=bc", f"env={TASK}"] + arm.train_overrides())
        for key, value in arm.overrides.items():
            node = train
            for part in key.split("."):
                node = node[part]
            assert node == value, (arm.name, key)
    cells, _ = grid_cells(cfg)
    assert len(cells) == len(cfg.tasks) * len(cfg.seeds) * 2


def test_lr_names_set_the_rate():
    assert arm_name("gru", {"lr": 1e-3}, {"lr": 1e-3}) == "gru"
    assert arm_name("gru", {"lr": 3e-4}, {"lr": 1e-3}) == "gru@lr0.0003"
    assert resolve_arms(["gru@lr0.0003"], {})[0].overrides == {"algo.lr": 0.0003}
    with pytest.raises(ValueError, match=r"'3e-4x' after '@lr' is not a number, e\.g\. gru@lr0\.003"):
        resolve_arms(["gru@lr3e-4x"], {})


def test_tagged_names_round_trip_through_resolve_arms_and_a_multirun_of_cells():
    own = {"lr": 1e-3, "rlr": 1.0, "state_dim": 64, "dropout": 0.0}
    values = {"lr": 3.33e-5, "rlr": 0.3, "state_dim": 32, "dropout": 0.1}
    name = arm_name("linoss_ring", values, own)
    assert name == "linoss_ring@lr3.33e-05@rlr0.3@state_dim32@dropout0.1"
    assert arm_name("linoss_ring", own | {"rlr": 0.3}, own) == "linoss_ring@rlr0.3"  # only what differs is named
    (arm,) = resolve_arms([name], compose("compare").arms)
    assert (arm.name, arm.policy) == (name, "linoss")
    assert arm.overrides == {"policy.backbone_kwargs.init.kind": "ring", "algo.lr": 3.33e-5,
                             "algo.recurrence_lr_factor": 0.3, "policy.backbone_kwargs.state_dim": 32,
                             "policy.backbone_kwargs.dropout": 0.1}  # fmt: skip
    assert type(arm.overrides["policy.backbone_kwargs.state_dim"]) is int
    train = compose("train", ["algo=bc", f"env={TASK}", *arm.train_overrides()])
    assert (train.algo.lr, train.algo.recurrence_lr_factor, train.policy.backbone_kwargs.state_dim,
            train.policy.backbone_kwargs.dropout) == (3.33e-5, 0.3, 32, 0.1)  # fmt: skip
    # the cell ids of a multirun: Hydra's grammar splits them at the commas only, and they parse back
    ids = [Cell("hopper_p", name, 100).id, Cell("hopper_p", "mamba@d_state8", 100).id]
    (override,) = OverridesParser.create().parse_overrides(["cell=" + ",".join(ids)])
    assert list(override.sweep_string_iterator()) == ids and Cell.parse(ids[0]).backbone == name


def test_unknown_tags_and_search_entries_are_refused():
    for name, named in (("gru@foo3", r"'foo' is not a tag of arm 'gru': a tag is one of \['lr', 'rlr'\] .* number "
                                     r"key of policy gru's backbone_kwargs \['dropout', 'n_layers'\]"),
                        ("gru@lrfast", "'lrfast' is not a tag"), ("gru@0.1", "'' is not a tag"),
                        ("gru@dropout0.1@dropout0.2", "sets @dropout twice")):  # fmt: skip
        with pytest.raises(ValueError, match=named):
            resolve_arms([name], {})
    train = {"lr": 1e-3}
    for search, named in (({"comon": {}}, r"unknown key\(s\) \['comon'\] in lr_sweep.search"),
                          ({"per_arm": {"grux": {"n_layers": [1]}}}, "per_arm.grux names neither an arm"),
                          ({"per_arm": {"gru": {"d_state": [8]}}}, "lr_sweep.search: 'd_state' is not a tag of arm"),
                          ({"common": {"lr": [1e-3]}}, "the learning rates are lr_sweep.lrs"),
                          ({"common": {"dropout": [0.1, 0.1]}}, "not a list of distinct numbers"),
                          ({"common": {"dropout": ["high"]}}, "not a list of distinct numbers")):  # fmt: skip
        with pytest.raises(ValueError, match=named):
            LRSweep(TASK, [100], [1e-3, 1e-2], search=search).spaces(resolve_arms(["gru"], {}), {}, train)
    with pytest.raises(ValueError, match="name arm 'gru@lr0.003' without its tags"):
        LRSweep(TASK, [100], [1e-3, 1e-2]).spaces(resolve_arms(["gru@lr0.003"], {}), {}, train)
    with pytest.raises(ValueError, match="give two or more distinct positive learning rates"):
        LRSweep(TASK, [100], [1e-3])
    for seeds in ([], [100, 100], 100):
        with pytest.raises(ValueError, match=r"lr_sweep.seeds is .*: give one or more distinct tuning seeds"):
            LRSweep(TASK, seeds, [1e-3, 1e-2])
    with pytest.raises(ValueError, match="per_arm.linos names neither an arm"):
        check_grid(compose("compare", ["+lr_sweep.search.per_arm.linos={rlr: [0.3]}"]))


def test_a_trial_on_several_tuning_seeds_scores_its_mean_once_it_has_run_on_every_one():
    sweep = LRSweep(TASK, [100, 101], [1e-3, 1e-2])
    runs = {"gru": {100: {"normalized_score": 40.0}, 101: {"normalized_score": 61.0}},
            "gru@lr0.01": {101: {"normalized_score": 90.0}}}  # fmt: skip
    assert sweep.scores(runs) == {"gru": {"normalized_score": 50.5}}  # gru@lr0.01 still waits for seed 100
    space = sweep.spaces(resolve_arms(["gru"], {}), {}, {"lr": 1e-3})[0]
    assert space.replay(sweep, sweep.scores(runs)).pending == ["gru@lr0.01"]


def test_an_edge_optimum_extends_the_grid_one_log_step_beyond_that_edge():
    grid = {1e-4: 0.0, 1e-3: 0.0, 1e-2: 0.0}
    assert interior_step(grid | {1e-4: 90.0}, 1e-3, 3) == SweepStep(1e-4, 1e-5)  # edge low: one decade lower
    assert interior_step(grid | {1e-2: 90.0}, 1e-3, 3) == SweepStep(1e-2, 0.1)  # edge high
    assert interior_step(grid | {1e-3: 90.0}, 1e-3, 3) == SweepStep(1e-3, None)  # interior: done
    assert interior_step(grid | {1e-2: 90.0}, 1e-3, 0) == SweepStep(1e-2, None)  # the cap: the edge stays
    assert interior_step({3e-4: 50.0, 1e-3: 70.0, 3e-3: 90.0}, 1e-3, 1) == SweepStep(3e-3, 0.009)  # ×3: its own step
    # ties go to the rate nearest the default: a plateau reaching an edge is interior when the default is inside it
    assert interior_step({1e-4: 90.0, 1e-3: 90.0, 1e-2: 10.0}, 1e-3, 3) == SweepStep(1e-3, None)
    assert interior_step({1e-4: 90.0, 1e-3: 90.0, 1e-2: 10.0}, 1e-4, 3) == SweepStep(1e-4, 1e-5)
    assert interior_step({1e-3: 90.0}, 1e-3, 3) == SweepStep(1e-3, None)  # one rate: no step to extend by


def test_trials_left_after_the_extensions_refine_the_rate_toward_its_better_neighbour():
    scores = {1e-4: 10.0, 1e-3: 90.0, 1e-2: 50.0}
    assert sweep_step(scores, 1e-3, 3, 2) == SweepStep(1e-3, 0.00316)  # interior: between the best and 1e-2
    assert sweep_step(scores | {0.00316: 40.0}, 1e-3, 3, 1) == SweepStep(1e-3, 0.00178)  # 3.16e-3 is the better now
    assert sweep_step(scores | {1e-4: 50.0}, 1e-3, 3, 1) == SweepStep(1e-3, 0.000316)  # a tie: the side nearer 1e-3
    assert sweep_step(scores, 1e-3, 3, 0) == SweepStep(1e-3, None)  # no trial left
    assert sweep_step({1e-3: 10.0, 1e-2: 90.0}, 1e-3, 1, 5) == SweepStep(1e-2, 0.1)  # the extension comes first
    assert sweep_step({1e-3: 10.0, 1e-2: 90.0}, 1e-3, 0, 5) == SweepStep(1e-2, 0.00316)  # capped: refine inward
    assert sweep_step({1e-3: 10.0, 1.001e-3: 90.0}, 1e-3, 0, 5) == SweepStep(1.001e-3, None)  # nothing new between


def simulate(sweep: LRSweep, spaces: list[SearchSpace], score) -> tuple[dict[str, dict], list]:
    """Every arm's search run to its end with ``score(arm) -> float`` for the cells' normalized scores."""
    results = {}
    while pending := [n for s in spaces for n in s.replay(sweep, results).pending]:
        results |= {a.name: {"normalized_score": score(a)} for a in resolve_arms(pending, {})}
    return results, [s.replay(sweep, results) for s in spaces]


def test_every_arm_gets_the_same_number_of_trials_and_its_best_one():
    """The shipped search spaces (3 or 5 knob values beyond an arm's own) on made-up scores: learning-rate optima
    inside the grid, at its edge and past the extension cap, knob optima inside and at the edges, and plateaus."""
    cfg = compose("compare")
    sweep = to_dataclass(LRSweep, cfg.lr_sweep, "lr_sweep")
    spaces = {s.arm: s for s in sweep.spaces(resolve_arms(list(cfg.backbones), cfg.arms), cfg.arms,
                                             OmegaConf.to_container(cfg.train))}  # fmt: skip
    best_lr = {"linoss": 2e-4, "transformer": 1e-7, "mamba": 0.05, "gru": 1e-3, "mlp": 1e-2}
    best = {"linoss": {"rlr": 0.3, "state_dim": 32, "dropout": 0.1}, "transformer": {"context": 64, "dropout": 0.0},
            "mamba": {"rlr": 0.1, "d_state": 16, "dropout": 0.1}, "gru": {}, "mlp": {"n_layers": 1, "dropout": 0.0}}

    def score(arm) -> float:  # 10 points per decade off the best rate, 5 per place off a knob's best value
        space = spaces[arm.name.partition("@")[0]]
        at = {t: arm.overrides.get(tag_key(arm, t), v) for t, v in space.own.items()}
        off = sum(abs(vs.index(at[t]) - vs.index(best[space.arm][t])) for t, vs in space.knobs.items()
                  if t in best[space.arm])  # fmt: skip: gru's knobs are a plateau
        return round(100 - 10 * abs(math.log10(at["lr"] / best_lr[space.arm])) - 5 * off, 3)

    results, tunings = simulate(sweep, list(spaces.values()), score)
    budget = len(sweep.lrs) + sweep.max_extensions + 5  # linoss and mamba: rlr 2, width 2, dropout 1 beyond their own
    assert {a: s.lr_trials for a, s in spaces.items()} == {"linoss": 8, "transformer": 10, "mamba": 8, "gru": 10,
                                                           "mlp": 10}  # fmt: skip
    for t in tunings:
        mine = {n: r["normalized_score"] for n, r in results.items() if n.partition("@")[0] == t.space.arm}
        assert t.trials == len(mine) == budget, t.space.arm
        assert mine[t.name] == max(mine.values()), t.space.arm  # the chosen one is the best on the tuning seed
    assert [t.name for t in tunings] == ["linoss@lr0.000199@rlr0.3@state_dim32@dropout0.1",
                                         "transformer@lr3.7e-06@context64", "mamba@lr0.0608@rlr0.1@dropout0.1", "gru",
                                         "mlp@lr0.01@n_layers1"]  # fmt: skip
    transformer = tunings[1].curves["lr"]  # three extensions (the cap), then two refinements inward from the edge
    assert sorted(transformer)[:3] == [3.7e-6, 4.87e-6, 6.41e-6] and min(transformer) == tunings[1].best["lr"]
    assert tunings[3].curves["n_layers"] == {1: 100.0, 2: 100.0, 3: 100.0}  # a tie keeps the arm's own value
    assert list(tunings[2].curves["d_state"]) == [16, 8, 32]  # at the best rate and rlr: own value first


def test_a_cell_id_names_its_json_and_parses_back(tmp_path):
    cell = Cell.parse("hopper_p/gru@lr0.003/2")
    assert cell == Cell("hopper_p", "gru@lr0.003", 2) and cell.id == "hopper_p/gru@lr0.003/2"
    assert cell.path(tmp_path) == tmp_path / "cells" / "hopper_p" / "gru@lr0.003" / "seed2.json"
    with pytest.raises(ValueError, match="is not TASK/ARM/SEED"):
        Cell.parse("hopper_p/gru")


def test_per_task_settings_merge_over_the_grids_and_unknown_keys_are_refused():
    base = ["train.steps=10", "train.window=8", "collect.episodes=2"]
    cfg = compose("compare", [*base, f"+per_task.{TASK}={{train: {{steps: 20}}, collect: {{episodes: 3}}}}"])
    collect, train = task_settings(cfg, TASK)
    assert (collect.episodes, train["steps"], train["window"]) == (3, 20, 8)
    assert task_settings(cfg, "hopper_p")[1]["steps"] == 10  # the other tasks keep the grid's settings
    keys = compose("compare", [f"+per_task.{TASK}={{train: {{observation_keys: [observation.environment_state]}}}}"])
    assert task_settings(keys, TASK)[1]["observation_keys"] == ["observation.environment_state"]  # any BC setting
    for bad, named in ((f"+per_task.{TASK}={{train: {{stepz: 5}}}}", r"per_task.\S+.train has unknown key\(s\) "
                        r"\['stepz'\]: a task's train takes \[.*'batch_size'"),
                       (f"+per_task.{TASK}={{eval: {{steps: 5}}}}", "takes collect and train")):  # fmt: skip
        with pytest.raises(ValueError, match=named):
            task_settings(compose("compare", [bad]), TASK)


def test_the_data_profile_runs_the_full_grid_on_two_pomdp_tasks_at_40_and_at_200_demonstrations():
    data, full = compose("compare", ["profile=data"]), compose("compare")
    for task in ("hopper_p", "halfcheetah_v"):
        many = f"{task}_n200"
        assert {task, many} <= set(data.tasks) and resolve_task(many, data.variants).overrides() == [f"env={task}"]
        (few_collect, few_train), (many_collect, many_train) = task_settings(data, task), task_settings(data, many)
        assert (few_collect.episodes, many_collect.episodes) == (40, 200) and few_train == many_train
    assert (data.seeds, data.backbones, data.lr_sweep, data.train) == (full.seeds, full.backbones, full.lr_sweep,
                                                                       full.train)  # fmt: skip


def test_tasks_are_env_configs_or_variants_of_them():
    grid = compose("compare")
    variant = resolve_task("memory_reacher_d256", grid.variants)
    assert variant.overrides() == ["env=memory_reacher", "env.kwargs.delay_steps=256"]
    assert resolve_task("hopper_p", grid.variants).overrides() == ["env=hopper_p"]
    with pytest.raises(ValueError, match=r"task 'nope': env 'nope' is not one of .* define a variant as variants.nope="):
        resolve_task("nope", grid.variants)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['kwarg'\] in variants.bad"):
        resolve_task("bad", {"bad": {"env": "memory_reacher", "kwarg": {"delay_steps": 1}}})


@pytest.mark.parametrize("policy", ["linoss", "transformer", "mamba", "gru", "mlp"])
def test_dropout_the_knob_of_every_arm_acts_on_every_backbone_while_training_only(policy):
    """``lr_sweep.search.common.dropout`` is a real choice for every arm: GRU's at one layer, Mamba's and the MLP's
    too; in evaluation the backbone is the one without dropout."""
    torch.manual_seed(0)
    kwargs = OmegaConf.to_container(compose("train", [f"policy={policy}"]).policy.backbone_kwargs)
    dropped = make_backbone(policy, control_period=0.04, d_model=16, **(kwargs | {"dropout": 0.5}))
    plain = make_backbone(policy, control_period=0.04, d_model=16, **kwargs)
    plain.load_state_dict(dropped.state_dict())
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        assert not torch.equal(dropped.train()(x)[0], dropped(x)[0])  # two draws of the dropout masks
        torch.testing.assert_close(dropped.eval()(x)[0], plain.eval()(x)[0], rtol=0, atol=0)
