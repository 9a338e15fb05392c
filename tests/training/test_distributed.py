"""Data-parallel training on 2 CPU processes (gloo), spawned here: BC follows the 1-process loss curve of the
same global batch, PPO keeps the ranks' weights identical, and only rank 0 writes the run directory."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_bc import policy, toy_demos
from test_ppo import make_trainer

from cadence.training.bc import BCConfig, BCTrainer
from cadence.training.distributed import exit_without_finalizing

WORLD = 2
STEPS = 12


def bc_config(tbptt: bool) -> BCConfig:
    return BCConfig(steps=STEPS, batch_size=8, window=8, warmup_steps=3, lr=3e-3, eval_every=0,
                    batches="streams" if tbptt else "windows")


def _join(rank: int, init_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)


def _leave() -> None:
    """Leave the group and end the spawned process as ``cadence-train`` ends a rank, without interpreter teardown
    (:func:`cadence.training.distributed.exit_without_finalizing`: gloo's threads can abort it after the work is
    done, which mp.spawn would report as a failure)."""
    dist.destroy_process_group()
    exit_without_finalizing(0)


def _bc_worker(rank: int, init_file: str, out: str, tbptt: bool) -> None:
    _join(rank, init_file)
    trainer = BCTrainer(policy("linoss"), toy_demos(), bc_config(tbptt), f"{out}/run", seed=3)
    losses = [trainer.train_step()["loss"] for _ in range(STEPS)]
    trainer.save_last()  # every rank calls it: the carried state is gathered
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"losses": losses, "params": [p.detach().flatten().tolist() for p in trainer.policy.parameters()]}, f)
    _leave()


@pytest.mark.parametrize("tbptt", [True, False])
def test_bc_two_processes_follow_the_one_process_loss_curve(tmp_path, tbptt):
    single = BCTrainer(policy("linoss"), toy_demos(), bc_config(tbptt), tmp_path / "single", seed=3)
    expected = [single.train_step()["loss"] for _ in range(STEPS)]
    mp.spawn(_bc_worker, args=(str(tmp_path / "pg"), str(tmp_path), tbptt), nprocs=WORLD)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert ranks[0]["losses"] == ranks[1]["losses"]  # every rank logs the global batch's loss
    np.testing.assert_allclose(ranks[0]["losses"], expected, rtol=1e-4)
    assert expected[-1] < 0.8 * expected[0]  # the curve compared is a learning one
    for a, b, p in zip(ranks[0]["params"], ranks[1]["params"], single.policy.parameters()):
        assert a == b  # DDP keeps the replicas identical
        np.testing.assert_allclose(a, p.detach().flatten().numpy(), rtol=1e-3, atol=1e-5)
    # the checkpoint holds the whole batch's state: a 1-process run resumes from it
    resumed = BCTrainer(policy("linoss", seed=99), toy_demos(), bc_config(tbptt), tmp_path / "run", seed=3)
    assert resumed.resume() and resumed.step == STEPS
    if tbptt:
        for got, want in zip(resumed.carried, single.carried):
            torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)


def _ppo_worker(rank: int, init_file: str, out: str) -> None:
    _join(rank, init_file)
    trainer = make_trainer(f"{out}/run", "gru", num_envs=4, steps=192, num_steps=24, window=12,
                           num_minibatches=2, save_every=96, eval_every=96)  # fmt: skip
    trainer.start_episodes()
    first_obs = trainer.next_obs.tolist()
    result = trainer.fit()
    trainer.close()
    params = torch.cat([p.detach().flatten() for p in trainer.agent.parameters()])
    gathered = [torch.empty_like(params) for _ in range(WORLD)]
    dist.all_gather(gathered, params)
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"first_obs": first_obs, "num_envs": trainer.num_envs, "result": result,
                   "max_param_diff": float((gathered[0] - gathered[1]).abs().max())}, f)  # fmt: skip
    _leave()


def test_ppo_two_processes_split_the_envs_and_stay_in_sync(tmp_path):
    mp.spawn(_ppo_worker, args=(str(tmp_path / "pg"), str(tmp_path)), nprocs=WORLD)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert [r["num_envs"] for r in ranks] == [2, 2]
    assert ranks[0]["max_param_diff"] == 0.0  # gradients all-reduced, observation statistics shared
    assert ranks[0]["result"]["returns"] == ranks[1]["result"]["returns"]  # rank 0's evaluation, broadcast
    assert len(ranks[0]["result"]["returns"]) == 3
    # global environment r·N/W + n is seeded as in one process with N environments
    single = make_trainer(tmp_path / "single", "gru", num_envs=4, steps=96)
    single.start_episodes()
    single.close()
    np.testing.assert_array_equal(np.concatenate([r["first_obs"] for r in ranks]), single.next_obs.numpy())
    assert (tmp_path / "run" / "checkpoints" / "last").is_dir() and (tmp_path / "run" / "checkpoints" / "best").is_dir()


def test_a_rank_exits_with_its_status_and_its_output_flushed_without_finalizing(tmp_path):
    """What a torchrun rank of cadence-train does once its results are written: buffered output and the log reach
    their files, the status is the one given, and no interpreter teardown runs (an atexit handler would write)."""
    script = (f"import atexit, logging; logging.basicConfig(filename={str(tmp_path / 'log')!r}, level=logging.INFO)\n"
              f"atexit.register(lambda: open({str(tmp_path / 'teardown')!r}, 'w').close())\n"
              "logging.info('finished'); print('result', end='')\n"
              "from cadence.training.distributed import exit_without_finalizing; exit_without_finalizing(3)\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and done.stdout == "result"
    assert "finished" in (tmp_path / "log").read_text() and not (tmp_path / "teardown").exists()
