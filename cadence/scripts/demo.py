"""``cadence-demo``: the main job — demonstrations → one policy per backbone → evaluation → table + plot.

Every backbone gets the same dataset, encoder, head, parameter budget, optimizer, schedule,
number of gradient steps and seed (``cadence/configs/demo.yaml``); only the temporal backbone
differs. Finished backbones are skipped on a re-run (their ``eval.json`` is read back), so an
interrupted demo continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import hydra
from hydra import compose
from omegaconf import DictConfig, OmegaConf

from cadence.datasets import collect_dataset
from cadence.perf import configure_allocator
from cadence.scripts.train import train_bc

log = logging.getLogger("cadence.demo")


def train_config(cfg: DictConfig, backbone: str, dataset: Path) -> DictConfig:
    """The ``cadence-train`` config of one cell, composed from the same YAML files as the CLI."""
    overrides = ["algo=bc", f"policy={backbone}", f"env={cfg.env.name}", f"seed={cfg.seed}",
                 f"device={cfg.device}", f"dataset={dataset}", f"policy.param_budget={cfg.param_budget}",
                 f"run_dir={Path(cfg.out) / 'train' / backbone}"]  # fmt: skip
    overrides += [f"algo.{k}={v}" for k, v in cfg.train.items()]
    return compose(config_name="train", overrides=overrides)


def table(rows: list[dict]) -> str:
    lines = [f"| backbone | params | normalized score | return | latency p50 / p99 (ms per step, {rows[0]['num_envs']} envs) | train time (s) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['backbone']} | {r['params']:,} | {r['normalized_score']:.1f} | {r['mean_return']:.1f} | "
                     f"{r['latency_ms_p50']:.3f} / {r['latency_ms_p99']:.3f} | {r['train_s']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["backbone"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.bar(names, [r["normalized_score"] for r in rows], color="tab:blue")
    a.axhline(100, color="k", lw=0.8, ls="--")
    a.set_ylabel("normalized score (expert = 100)")
    a.set_title(title)
    b.bar(names, [r["latency_ms_p50"] for r in rows], color="tab:orange")
    b.set_ylabel(f"latency p50 (ms per step, {rows[0]['num_envs']} envs)")
    b.set_title("stepping cost")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}")
    fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    tmp.replace(path)


def run_demo(cfg: DictConfig) -> list[dict]:
    out = Path(cfg.out)
    dataset = out / "dataset"
    if not (dataset / "meta" / "cadence.json").exists():
        log.info("collecting %d %s demonstrations on %s", cfg.collect.episodes, cfg.collect.expert, cfg.env.name)
        collect_dataset(cfg.env, cfg.collect.expert, cfg.collect.episodes, dataset, noise=cfg.collect.noise,
                        seed=cfg.seed)  # fmt: skip
    rows = []
    for backbone in cfg.backbones:
        tcfg = train_config(cfg, backbone, dataset)
        done = Path(tcfg.run_dir) / "eval.json"
        if done.exists():
            result = json.loads(done.read_text())
        else:
            t0 = time.perf_counter()
            result = train_bc(tcfg) | {"train_s": time.perf_counter() - t0}
            done.write_text(json.dumps(result, indent=2))
        keys = ("params", "normalized_score", "mean_return", "latency_ms_p50", "latency_ms_p99", "num_envs")
        rows.append({"backbone": backbone, "train_s": result.get("train_s", float("nan"))} | {k: result[k] for k in keys})
        print(f"{backbone}: normalized score {result['normalized_score']:.1f}, return {result['mean_return']:.1f}")
    text = table(rows)
    (out / "results.md").write_text(f"# Demo: {cfg.env.name}, {cfg.param_budget:,}-parameter policies\n\n{text}\n")
    plot(rows, out / "comparison.png", f"{cfg.env.name}, BC, {cfg.param_budget:,} params")
    print(f"\n{text}\n\nplot: {out / 'comparison.png'}  table: {out / 'results.md'}")
    return rows


@hydra.main(config_path="../configs", config_name="demo", version_base=None)
def main(cfg: DictConfig) -> None:
    configure_allocator()
    logging.getLogger().setLevel(logging.INFO)
    run_demo(cfg)


if __name__ == "__main__":
    main()
