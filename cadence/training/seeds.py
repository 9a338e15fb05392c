"""The seed plan of every run, in one place: which seeds train, tune, select checkpoints and evaluate.

A run's training seed ``seed`` (``cadence-train seed=``: torch, the batches) also fixes the env seeds of its
episodes: an evaluation on ``envs`` sub-envs resets sub-env ``i`` with ``BASE + seed + i`` once (later episodes
follow from that reset), so its episodes are :func:`episode_seeds` ``(BASE, seed, envs)``:

* **validation** episodes (``VALIDATION_SEED``): the evaluations during BC and PPO training, which pick
  ``checkpoints/best`` and make the learning curves;
* **evaluation** episodes (``EVAL_SEED``): the final evaluation of a BC run's last checkpoint or a PPO run's final
  policy (a run's reported score)
  and, in a comparison, the robustness evaluations of its ``best``, chosen on validation episodes only;
* **tuning** (``TUNING_SEED``): the training seeds of a comparison's tuning cells (the learning-rate sweep) start
  here, above every evaluation seed of a grid (``seeds``, below it);
* **demonstrations**: reset seeds hashed from the dataset's collection seed (:func:`cadence.datasets.collect.
  episode_rng`), which :func:`seed_clashes` checks like the rest.

:func:`seed_clashes` names every way a grid's held-out seeds would meet its evaluation seeds.
"""

from __future__ import annotations

from collections.abc import Iterable

EVAL_SEED = 10_000
"""Final evaluation episodes: env seeds ``EVAL_SEED + seed + i``."""
VALIDATION_SEED = 20_000
"""Validation episodes (checkpoint selection, learning curves): env seeds ``VALIDATION_SEED + seed + i``."""
TUNING_SEED = 100
"""The first training seed of tuning cells; a grid's evaluation seeds lie below it."""


def episode_seeds(base: int, seed: int, envs: int) -> set[int]:
    """The env seeds of an evaluation of the run with training seed ``seed`` on ``envs`` sub-envs from ``base``
    (:data:`EVAL_SEED` or :data:`VALIDATION_SEED`)."""
    return set(range(base + seed, base + seed + envs))


def seed_clashes(evaluation: Iterable[int], tuning: Iterable[int], envs: int, demo_seeds: Iterable[int] = ()
                 ) -> list[str]:  # fmt: skip
    """Every clash of a grid's held-out seeds with its evaluation seeds, one sentence each (none: empty): a
    tuning training seed that is an evaluation training seed (``evaluation``), and an env seed of a validation
    episode (any cell), of a tuning cell's evaluation or of a demonstration (``demo_seeds``) that is an env seed
    of an evaluation cell's final evaluation on ``envs`` sub-envs."""
    evaluation, tuning = sorted(set(evaluation)), sorted(set(tuning))
    clashes = [f"tuning seed {s} is an evaluation seed" for s in tuning if s in evaluation]
    final = set().union(*(episode_seeds(EVAL_SEED, s, envs) for s in evaluation))
    held_out = {f"validation episodes of seed {s}": episode_seeds(VALIDATION_SEED, s, envs)
                for s in evaluation + tuning}  # fmt: skip
    held_out |= {f"evaluation episodes of tuning seed {s}": episode_seeds(EVAL_SEED, s, envs) for s in tuning}
    held_out["the demonstrations"] = set(demo_seeds)
    clashes += [f"{what} use env seed(s) {sorted(seeds & final)[:3]} of the final evaluation"
                for what, seeds in held_out.items() if seeds & final]  # fmt: skip
    return clashes
