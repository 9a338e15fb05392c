"""Fault injection (docs/faults.md): each fault that was silently wrong, damaging, or a raw traceback, on tiny data.

Every command answers a fault with one line, ``cadence-NAME: error: PROBLEM; FIX``, and exit code 2, and leaves
on disk what it should (the run's record, the dataset's files). The commands run in this process (:func:`cli`)
except where the point is what a fresh process imports.
"""

import contextlib
import errno
import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from safetensors.torch import load_file, save_file

from cadence.configs import compose, to_dataclass
from cadence.datasets import WindowDataset, check_dataset, collect_dataset
from cadence.datasets.format import PROGRESS_FILE, data_files
from cadence.deploy import Controller, ControllerConfig
from cadence.evaluation import evaluate, evaluate_checkpoint
from cadence.policies import PolicyConfig, SequencePolicy, make_policy
from cadence.scripts import collect as collect_script
from cadence.scripts import eval as eval_script
from cadence.scripts import train as train_script
from cadence.training.bc import BCConfig
from cadence.training.checkpoint import Checkpoints
from cadence.training.run import check_config

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
COLLECT = dict(env="invertedpendulum_p", expert="lqr", episodes=2, noise=0.5, seed=0, part_episodes=1,
               reference_episodes=1)  # fmt: skip
COLLECT_ARGS = ["env=invertedpendulum_p", "expert=lqr", "episodes=2", "noise=0.5", "seed=0", "part_episodes=1",
                "reference_episodes=1"]  # fmt: skip
LINOSS = ["policy=linoss", "policy.backbone_kwargs.n_layers=1", "policy.backbone_kwargs.state_dim=8"]
ALGO = ["algo.steps=4", "algo.save_every=2", "algo.eval_every=0", "algo.eval_episodes=1", "algo.eval_envs=1",
        "algo.batch_size=4", "algo.window=8"]  # fmt: skip
TRAIN_ARGS = [*LINOSS, "policy.d_model=16", *ALGO]


def cli(main, *argv: str) -> tuple[int, str]:
    """Run the command ``main`` (a script's entry point) in this process: (exit code, its last stderr line)."""
    err = io.StringIO()
    with mock.patch.object(sys, "argv", ["cadence", *argv]), contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code
    assert "Traceback" not in err.getvalue(), err.getvalue()
    lines = err.getvalue().strip().splitlines()
    return code, lines[-1] if lines else ""


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


def assert_refused(code: int, line: str, name: str, *fragments: str) -> None:
    assert code == 2 and line.startswith(f"{name}: error: "), (code, line)
    for fragment in fragments:
        assert fragment in line, (fragment, line)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two LQR episodes of InvertedPendulum-P, one per committed part (two data files, two episode files)."""
    root = tmp_path_factory.mktemp("faults") / "ip_p"
    collect_dataset(root=root, **COLLECT)
    return root


@pytest.fixture
def copy_of(dataset, tmp_path) -> Path:
    shutil.copytree(dataset, tmp_path / "ds")
    return tmp_path / "ds"


@pytest.fixture(scope="module")
def run_dir(dataset, tmp_path_factory) -> Path:
    """A BC run of 4 steps written by cadence-train (with its .hydra record)."""
    run = tmp_path_factory.mktemp("faults") / "run"
    with contextlib.chdir(run.parent):
        assert cli(train_script.main, f"dataset={dataset}", f"run_dir={run}", *TRAIN_ARGS)[0] == 0
    return run


def tiny_policy(**cfg) -> SequencePolicy:
    return make_policy(PolicyConfig(backbone="gru", d_model=8, backbone_kwargs={"n_layers": 1}, **cfg), OBS, ACT,
                       control_period=0.04).eval()  # fmt: skip


def overflowing_policy() -> SequencePolicy:
    """Finite weights whose features overflow on an observation of 0.5s (:data:`HALF`): its action is NaN."""
    policy = tiny_policy()
    with torch.no_grad():
        policy.encoder[0].weight.fill_(3e38)
    return policy


HALF = np.full(3, 0.5, np.float32)


class DivergingPolicy:
    """What :func:`evaluate` steps (``reset``, ``act``, ``reset_where``), with actions that turn NaN at step 3."""

    def reset(self, n: int) -> None:
        self.n, self.t = n, 0

    def act(self, obs) -> torch.Tensor:
        self.t += 1
        return torch.full((self.n, 1), float("nan") if self.t >= 3 else 0.0)

    def reset_where(self, done) -> None:
        pass


# ---------------------------------------------------------------- silently wrong: non-finite weights and actions
def test_nan_weights_are_refused_at_load_and_by_cadence_eval(run_dir, tmp_path, monkeypatch):
    ckpt = tmp_path / "nan"
    shutil.copytree(run_dir / "checkpoints" / "last", ckpt)
    tensors = load_file(ckpt / "model.safetensors")
    name = next(k for k, t in tensors.items() if t.is_floating_point() and t.numel() > 1)
    tensors[name][0] = float("nan")
    save_file(tensors, ckpt / "model.safetensors")
    with pytest.raises(ValueError, match=f"hold NaN or inf in 1 tensor\\(s\\) \\({name}\\)"):
        SequencePolicy.from_pretrained(ckpt)
    with pytest.raises(ValueError, match="NaN or inf"):
        Controller.from_pretrained(ckpt)
    monkeypatch.chdir(tmp_path)
    code, line = cli(eval_script.main, f"checkpoint={ckpt}", "episodes=1", "num_envs=1", f"out={tmp_path / 'eval'}")
    assert_refused(code, line, "cadence-eval", "NaN or inf", name)
    assert not (tmp_path / "eval").exists()  # no score reported


def test_controller_never_emits_a_non_finite_action():
    poisoned = tiny_policy()
    with torch.no_grad():
        poisoned.head.mean.bias[0] = float("inf")
    with pytest.raises(ValueError, match="the policy's weights hold NaN or inf"):
        Controller(poisoned, ControllerConfig(runtime="eager"))
    controller = Controller(overflowing_policy(), ControllerConfig(runtime="eager"))
    with pytest.raises(FloatingPointError, match="is not finite .*ControllerConfig.fallback"):
        controller(HALF)
    seen = []

    def fallback(obs):
        seen.append(obs)
        return [0.5, 9.0]

    safe = Controller(overflowing_policy(), ControllerConfig(runtime="eager", fallback=fallback))
    np.testing.assert_array_equal(safe(HALF), [0.5, 1.0])  # the fallback's action, clipped to the bounds
    assert safe.bad_action_count == 1 and np.array_equal(seen[0], HALF)
    assert all(float(s.abs().max()) == 0 for s in safe.state)  # the diverged state was restarted
    fixed = Controller(overflowing_policy(), ControllerConfig(runtime="eager", fallback=np.zeros(2)))
    np.testing.assert_array_equal(fixed(HALF), [0.0, 0.0])
    with pytest.raises(ValueError, match=r"fallback gives \[0.0\]; it must give a finite action of shape \(2,\)"):
        Controller(tiny_policy(), ControllerConfig(runtime="eager", fallback=[0.0]))


def test_an_evaluation_of_a_diverging_policy_reports_no_score():
    env_fns = [lambda: gym.make("InvertedPendulum-v5")] * 2
    with pytest.raises(ValueError, match=r"NaN or inf in sub-env\(s\) \[0, 1\] at step 3 .*no score is reported"):
        evaluate(DivergingPolicy(), env_fns, episodes=2)
    with pytest.raises(ValueError, match="episodes >= 1 .*got episodes=0"):
        evaluate(DivergingPolicy(), env_fns, episodes=0)


# ---------------------------------------------------------------- silently wrong: corrupt dataset bytes
def flip_byte(path: Path, at: int = 300) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_changed_bytes_in_a_committed_file_are_refused_at_load_and_on_resume(copy_of):
    bad = data_files(copy_of)[0]
    flip_byte(bad)  # inside a data page: the parquet footer still reads
    before = snapshot(copy_of)
    for load in (lambda: WindowDataset(copy_of), lambda: collect_dataset(root=copy_of, **COLLECT)):
        with pytest.raises(ValueError, match=f"{bad} is corrupt: its bytes changed after the collection committed it"):
            load()
    assert snapshot(copy_of) == before  # refused, nothing rolled back or rewritten


def test_rerunning_collect_on_a_truncated_part_refuses_naming_the_file(copy_of, monkeypatch):
    bad = data_files(copy_of)[1]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    before = snapshot(copy_of)
    monkeypatch.chdir(copy_of.parent)
    code, line = cli(collect_script.main, *COLLECT_ARGS, f"out={copy_of}")
    assert_refused(code, line, "cadence-collect", str(bad), "is corrupt", f"delete {copy_of}")
    assert snapshot(copy_of) == before


def test_a_dataset_without_a_cadence_record_loads_without_hashes(copy_of):
    (copy_of / PROGRESS_FILE).unlink()  # as LeRobot writes a dataset: no per-file record
    assert WindowDataset(copy_of).num_episodes == 2


# ---------------------------------------------------------------- damaging: a refused launch keeps the run's record
@pytest.mark.parametrize("args, fragments", [
    ([*LINOSS, "policy.d_model=16"], ["already holds a run; pass resume=true"]),
    (["resume=true", "policy=gru"], ["is a linoss run; pass policy=linoss"]),
    (["resume=true", *LINOSS, "policy.d_model=32"], ["was trained with policy.d_model=16", "this launch has 32"]),
    (["resume=true", *LINOSS, "policy.d_model=16", "+algo.stepz=3"], ["unknown key(s) ['stepz'] in algo"]),
])  # fmt: skip
def test_a_refused_launch_leaves_the_run_as_it_was(run_dir, dataset, args, fragments, monkeypatch):
    """Refused before anything is written: the checkpoints and the record .hydra/ stay as they were (Hydra's log
    file, which only grows, aside)."""
    before = snapshot(run_dir)
    monkeypatch.chdir(run_dir.parent)
    code, line = cli(train_script.main, f"dataset={dataset}", f"run_dir={run_dir}", *ALGO, *args)
    assert_refused(code, line, "cadence-train", *fragments)
    assert {k: v for k, v in snapshot(run_dir).items() if not k.endswith(".log")} == \
           {k: v for k, v in before.items() if not k.endswith(".log")}  # fmt: skip
    assert (run_dir / ".hydra" / "config.yaml").is_file()


# ---------------------------------------------------------------- silently wrong: param_budget
def test_impossible_and_invalid_param_budgets_are_refused():
    with pytest.raises(ValueError, match=r"param_budget=10 is below the smallest policy this config builds: [\d,]+ "
                                         r"parameters at d_model=8"):  # fmt: skip
        make_policy(PolicyConfig(param_budget=10), OBS, ACT, control_period=0.04)
    for bad in (-5, 0, 2.5, True):
        with pytest.raises(ValueError, match="is not a number of parameters"):
            PolicyConfig(param_budget=bad)


# ---------------------------------------------------------------- raw tracebacks: values at the config boundary
FAST = {  # command -> a value of the wrong type (answered before torch or LeRobot is imported)
    "train": ["algo.steps=abc"], "eval": ["checkpoint=x", "episodes=abc"], "collect": ["out=x", "episodes=0.5"],
    "compare": ["param_budget=abc"], "demo": ["seed=abc"], "inspect": ["init=x"], "compare_cell": ["param_budget=abc"],
}  # fmt: skip
PROBE = """import runpy, sys
try:
    runpy.run_module(sys.argv[1], run_name="__main__")
except SystemExit as e:
    print("exit", e.code, "torch" in sys.modules, "lerobot" in sys.modules)
"""


@pytest.mark.parametrize("script", sorted(FAST))
def test_every_command_answers_a_bad_value_in_one_line_before_heavy_imports(script, tmp_path):
    """One line, exit 2, and neither torch nor LeRobot imported (the seconds they cost: docs/faults.md)."""
    r = subprocess.run([sys.executable, "-c", PROBE, f"cadence.scripts.{script}", *FAST[script]], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    name = "compare_cell" if script == "compare_cell" else f"cadence-{script}"
    assert r.stdout.strip() == "exit 2 False False", (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"{name}: error: "), r.stderr


def test_config_values_name_the_key_and_what_it_takes():
    with pytest.raises(ValueError, match=r"algo.steps takes an integer, got 'abc'; write e.g. algo.steps=3000"):
        to_dataclass(BCConfig, {"steps": "abc"}, "algo")
    with pytest.raises(ValueError, match="policy.backbone_kwargs.n_layers takes an integer, got 'two'"):
        PolicyConfig(backbone_kwargs={"n_layers": "two"})
    with pytest.raises(ValueError, match=r"device='gpu' is not a device; write device=cpu, device=cuda"):
        check_config(compose("train", ["algo=ppo", "device=gpu"]))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device=cuda but this machine has no CUDA GPU; use device=cpu"):
            check_config(compose("train", ["algo=ppo", "device=cuda"]))
    policy = tiny_policy()
    for bad in (-1, 0):
        with pytest.raises(ValueError, match=f"reset\\(batch_size={bad}\\): .*pass a positive integer"):
            policy.reset(bad)
    with pytest.raises(ValueError, match=r"make_policy takes Box .* the action space is Discrete\(3\)"):
        make_policy(PolicyConfig(), OBS, gym.spaces.Discrete(3))


def test_a_typo_in_an_override_is_one_line(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, line = cli(train_script.main, "polcy=gru")
    assert_refused(code, line, "cadence-train", "Could not override 'polcy'", "+polcy=gru")
    code, line = cli(train_script.main, "policy=lnoss")
    assert_refused(code, line, "cadence-train", "Could not find 'policy/lnoss'", "gru, linoss, mamba")
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------- raw tracebacks: data problems
def test_non_finite_frames_are_refused_naming_the_file_and_the_frames(copy_of):
    (copy_of / PROGRESS_FILE).unlink()  # as if the values had been written so: no record to catch it first
    path = data_files(copy_of)[1]
    table = pq.read_table(path)
    col = table["observation.state"].combine_chunks()
    values = col.flatten().to_numpy().copy()
    values[5] = np.nan
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(values), col.type.list_size)
    pq.write_table(table.set_column(table.schema.get_field_index("observation.state"), "observation.state", fixed),
                   path)  # fmt: skip
    first = int(table["index"][0].as_py())
    with pytest.raises(ValueError, match=f"{path} holds NaN or inf in observation.state at 1 frame\\(s\\) "
                                         f"\\(dataset index {first + 5 // col.type.list_size}\\)"):  # fmt: skip
        WindowDataset(copy_of)


def test_a_cut_off_info_json_and_a_half_parquet_file_are_named(copy_of):
    info = copy_of / "meta" / "info.json"
    info.write_text("")
    with pytest.raises(ValueError, match=f"{info} is empty or not valid JSON"):
        check_dataset(copy_of)
    collect_dataset(root=copy_of, **COLLECT)  # a re-run restores it from the committed record
    assert check_dataset(copy_of)["total_episodes"] == 2
    (copy_of / PROGRESS_FILE).unlink()
    half = data_files(copy_of)[0]
    half.write_bytes(half.read_bytes()[: half.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"{half} is truncated or corrupt .*write the dataset again"):
        WindowDataset(copy_of)


# ---------------------------------------------------------------- raw tracebacks: a full disk
ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_collection_keeps_the_committed_parts(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    monkeypatch.chdir(tmp_path)
    real, saved = LeRobotDataset.save_episode, []

    def save_until_full(self, *a, **kw):  # the second episode (the second part) finds the disk full
        saved.append(1)
        if len(saved) == 2:
            raise ENOSPC
        return real(self, *a, **kw)

    with mock.patch.object(LeRobotDataset, "save_episode", save_until_full):
        code, line = cli(collect_script.main, *COLLECT_ARGS, f"out={out}")
    assert_refused(code, line, "cadence-collect", "no space left on the device", "the committed parts are kept",
                   "run the same command again")  # fmt: skip
    assert len(json.loads((out / PROGRESS_FILE).read_text())["returns"]) == 1  # the first part is kept
    assert cli(collect_script.main, *COLLECT_ARGS, f"out={out}")[0] == 0  # what the message says: it continues
    assert WindowDataset(out).num_episodes == 2


def test_a_full_disk_during_training_keeps_the_last_checkpoint(dataset, tmp_path, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    real = Checkpoints.save

    def save_until_full(self, name, policy, step, *a, **kw):
        if name == "last" and step > 2:
            raise ENOSPC
        return real(self, name, policy, step, *a, **kw)

    with mock.patch.object(Checkpoints, "save", save_until_full):
        code, line = cli(train_script.main, f"dataset={dataset}", f"run_dir={run}", *TRAIN_ARGS)
    assert_refused(code, line, "cadence-train", "no space left on the device", "checkpoints/last", "resume=true")
    kept = json.loads((run / "checkpoints" / "last" / "config.json").read_text())["extra"]["step"]
    assert kept == 2
    assert cli(train_script.main, f"dataset={dataset}", f"run_dir={run}", *TRAIN_ARGS, "resume=true")[0] == 0
    assert (run / "eval.json").exists()


# ---------------------------------------------------------------- raw tracebacks: misleading messages
def test_eval_names_the_env_the_policy_was_trained_on_and_the_checkpoint_to_pass(run_dir, tmp_path):
    ckpt = run_dir / "checkpoints" / "last"
    with pytest.raises(ValueError, match="was trained on invertedpendulum_p .*pass env=invertedpendulum_p"):
        evaluate_checkpoint(ckpt, "hopper_p", episodes=1, num_envs=1, out=tmp_path)
    with pytest.raises(FileNotFoundError, match=f"{run_dir} is a run directory: pass its checkpoint, "
                                                f"{run_dir / 'checkpoints' / 'best'}"):  # fmt: skip
        evaluate_checkpoint(run_dir, out=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("override, fragment", [("backbones=[linoss,nope]", "'nope'"), ("tasks=[nope]", "'nope'")])
def test_compare_checks_the_whole_grid_before_collecting(override, fragment, tmp_path):
    from cadence.comparison import run_compare

    cfg = compose("compare", ["profile=quick", override, f"out={tmp_path / 'out'}"])
    with pytest.raises(ValueError, match=fragment):
        run_compare(cfg, [override])
    assert not (tmp_path / "out").exists()
