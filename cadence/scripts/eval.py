"""``cadence-eval checkpoint=DIR [env=NAME] episodes=N [video=true]``: roll a checkpoint out and report.

A thin Hydra wrapper around :func:`cadence.evaluation.evaluate_checkpoint`: writes ``results.json`` (and
``episode_0.mp4`` with ``video=true``) to ``out`` and prints a one-line summary.
"""

from __future__ import annotations

import json

from omegaconf import DictConfig

from cadence.scripts.cli import command


@command("cadence-eval", "eval", disk_full="no results were written; free some space and run the command again")
def main(cfg: DictConfig) -> None:
    from cadence.evaluation import evaluate_checkpoint

    result, path = evaluate_checkpoint(cfg.checkpoint, cfg.get("env"), cfg.episodes, cfg.num_envs, cfg.seed,
                                       cfg.asynchronous, cfg.device, cfg.video, cfg.out)  # fmt: skip
    env = json.loads(path.read_text())["env"]
    print(f"{env} {cfg.checkpoint}: {result.summary()} -> {path}")


if __name__ == "__main__":
    main()
