"""``cadence-collect env=NAME [expert=NAME] episodes=N out=DIR noise=SIGMA seed=S [render=true]``: record
demonstrations (with ``render``, the env's camera frames too).

Writes a LeRobot v3 dataset to ``out`` (see ``cadence/datasets/collect.py`` for DART noise, crash safety
and resuming) and prints a summary: episodes, frames, expert return mean ± std, path.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from cadence.scripts.cli import command

log = logging.getLogger("cadence.collect")
DISK_FULL = ("the committed parts are kept (the unfinished one is rolled back on the next run); free some space "
             "and run the same command again to continue")  # fmt: skip


def summary(meta: dict, out: str) -> str:
    import numpy as np

    returns, clean = np.asarray(meta["episode_returns"]), np.asarray(meta["clean_expert_returns"])
    lines = [f"{meta['env']['name']} ({meta['env']['id']}), expert {meta['expert']}, noise {meta['noise']}",
             f"episodes {meta['episodes']}, frames {meta['frames']}",
             f"return (noisy execution) {returns.mean():.1f} ± {returns.std():.1f}; clean expert "
             f"{clean.mean():.1f} ± {clean.std():.1f}; random {meta['reference']['random']:.1f}"]  # fmt: skip
    successes = [s for s in meta["episode_successes"] if s is not None]
    if successes:
        lines.append(f"success {100 * np.mean(successes):.0f}%")
    lines.append(f"dataset: {out}")
    return "\n".join(lines)


@command("cadence-collect", "collect", disk_full=DISK_FULL)
def main(cfg: DictConfig) -> None:
    from cadence.datasets import collect_dataset

    meta = collect_dataset(cfg.env, cfg.expert, cfg.episodes, cfg.out, noise=cfg.noise, seed=cfg.seed,
                           part_episodes=cfg.part_episodes, reference_episodes=cfg.reference_episodes,
                           render=cfg.render, video=cfg.video)  # fmt: skip
    print(summary(meta, cfg.out))


if __name__ == "__main__":
    main()
