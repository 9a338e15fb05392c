"""``cadence-inspect checkpoint=DIR [dataset=DIR] [out=DIR] [seed=S]``: which rhythms a LinOSS policy uses.

A thin Hydra wrapper around :func:`cadence.inspection.inspect_checkpoint`: prints a table per layer (frequencies,
decay times, |λ|, the strongest modes, how far they moved in training) and writes three PNGs to ``out``
(default ``CHECKPOINT/../../inspect``); :mod:`cadence.inspection` says what they show and where "before" comes from.
"""

from __future__ import annotations

from omegaconf import DictConfig

from cadence.scripts.cli import command


@command("cadence-inspect", "inspect")
def main(cfg: DictConfig) -> None:
    from cadence.inspection import inspect_checkpoint

    print(inspect_checkpoint(cfg))


if __name__ == "__main__":
    main()
