"""Which rhythms a LinOSS policy uses: the report and the plots of ``cadence-inspect checkpoint=DIR [dataset=DIR]``
(:func:`inspect_checkpoint`; the script :mod:`cadence.scripts.inspect` only parses the command line).

Prints a table per layer (frequencies, decay times, |λ|, the strongest modes by ‖B‖·‖C‖, how far the
frequencies moved in training) and writes three PNGs to ``out`` (default ``CHECKPOINT/../../inspect``):

* ``frequency_hist.png`` — per layer, the modes' natural frequencies at initialization vs now;
* ``radius_vs_frequency.png`` — |λ| against frequency for every mode, before and after;
* ``action_spectrum.png`` — the demonstrations' action power spectrum (Welch, per action channel)
  with the modes' frequencies drawn over it (skipped when no dataset is known).

"Before" is the policy as initialized. ``cadence-train algo=bc`` saves it as ``checkpoints/init``
beside ``best`` and ``last``, which is exact whatever the trainer's random-number use. For
checkpoints without one (PPO runs, older BC runs) it is re-created from the checkpoint's config with
the run's seed (``seed=``, default: the run's ``.hydra/config.yaml``): trainers seed torch and then
build the policy first, so the re-created parameters are the same (a test checks them against a saved
init; the normalization statistics, which come from the dataset, are not part of it and are not needed).
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .datasets import ACTION, WindowDataset  # noqa: E402
from .policies import PolicyConfig, SequencePolicy  # noqa: E402
from .policies.backbones.linoss_init import InitConfig  # noqa: E402
from .policies.backbones.linoss_spectrum import LayerSpectrum, spectrum, spectrum_table  # noqa: E402
from .policies.policy import read_checkpoint_config  # noqa: E402
from .spectral import power_spectrum, spectral_peaks, split_episodes  # noqa: E402

log = logging.getLogger("cadence.inspect")
PLOTS = ("frequency_hist.png", "radius_vs_frequency.png", "action_spectrum.png")


def initial_policy(checkpoint: Path, init: Path | None = None, seed: int | None = None
                   ) -> tuple[SequencePolicy | None, str]:  # fmt: skip
    """The policy of ``checkpoint`` as initialized, and how it was obtained (module docstring).
    Returns (None, reason) when neither an init checkpoint nor a seed is available."""
    init = init or checkpoint.parent / "init"
    if (init / "config.json").is_file():
        return SequencePolicy.from_pretrained(init), f"saved at training start ({init})"
    run_cfg = checkpoint.parent.parent / ".hydra" / "config.yaml"
    if seed is None and run_cfg.is_file():
        seed = OmegaConf.load(run_cfg).get("seed")
    if seed is None:
        return None, f"no init checkpoint at {init} and no seed known: pass seed=S to re-create it"
    config = read_checkpoint_config(checkpoint)
    torch.manual_seed(seed)
    policy = SequencePolicy(PolicyConfig(**config["policy"]), config["obs_dim"], config["act_dim"],
                            config["action_low"], config["action_high"], config["control_period"])  # fmt: skip
    return policy, f"re-created from the checkpoint's config with seed {seed}"


def action_spectrum(dataset: Path, control_period: float, segment_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD of the dataset's actions: freqs (F,) Hz and psd (A, F)."""
    ds = WindowDataset(dataset, keys=(ACTION,))
    actions = ds.data[ACTION].double().numpy()  # (N, A)
    return power_spectrum(split_episodes(actions, ds.ep_from.tolist(), ds.ep_to.tolist()), control_period, segment_s)


def _positive(f: np.ndarray, floor: float) -> np.ndarray:
    """Frequencies for a log axis: modes with a real eigenvalue (f = 0) are drawn at ``floor``."""
    return np.maximum(f, floor)


def _save(fig, ax, ylabel: str | None, title: str, path: Path) -> None:
    """Title ``ax``, add its legend, write ``fig`` to ``path`` as PNG and close it."""
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def plot_histograms(after: list[LayerSpectrum], before: list[LayerSpectrum] | None, peaks: np.ndarray, path: Path,
                    floor: float, nyquist: float) -> None:  # fmt: skip
    """Per layer, log-spaced histogram of the modes' frequencies before (grey) and after training."""
    bins = np.geomspace(floor, nyquist, 40)
    fig, axes = plt.subplots(len(after), 1, figsize=(7, 2.2 * len(after)), sharex=True, squeeze=False)
    for ax, s in zip(axes[:, 0], after):
        if before is not None:
            ax.hist(_positive(before[s.layer].frequency_hz, floor), bins, histtype="step", color="0.5", lw=1.5,
                    label="init")  # fmt: skip
        ax.hist(_positive(s.frequency_hz, floor), bins, histtype="step", color="C0", lw=1.5, label="trained")
        for f in peaks:
            ax.axvline(f, color="k", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_ylabel(f"layer {s.layer}\nmodes")
    axes[-1, 0].set_xlabel("frequency (Hz)")
    _save(fig, axes[0, 0], None, "natural frequency of each mode" + (" (dashed: data peaks)" if len(peaks) else ""), path)


def plot_radius(after: list[LayerSpectrum], before: list[LayerSpectrum] | None, path: Path, floor: float) -> None:
    """|λ| against frequency for every mode; trained markers sized by ‖B‖·‖C‖."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for s in after:
        if before is not None:
            b = before[s.layer]
            ax.scatter(_positive(b.frequency_hz, floor), b.radius, s=10, marker="x", color="0.6",
                       label="init" if s.layer == 0 else None)  # fmt: skip
        size = 10 + 60 * s.weight / max(s.weight.max(), 1e-12)
        ax.scatter(_positive(s.frequency_hz, floor), s.radius, s=size, alpha=0.7, color=f"C{s.layer}",
                   label=f"layer {s.layer} trained")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("frequency (Hz)")
    _save(fig, ax, "|λ| per step", "eigenvalue radius vs frequency (marker size: ‖B‖·‖C‖)", path)


def plot_action_spectrum(freqs: np.ndarray, psd: np.ndarray, after: list[LayerSpectrum], peaks: np.ndarray,
                         path: Path) -> None:  # fmt: skip
    """The demonstrations' action PSD per channel, with every mode's frequency as a vertical tick
    (darker = larger ‖B‖·‖C‖) and the spectral peaks dashed."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for a, p in enumerate(psd):
        ax.loglog(freqs[1:], p[1:], lw=1.2, label=f"action {a}")
    top = max(s.weight.max() for s in after)
    for s in after:
        for f, w in zip(s.frequency_hz, s.weight):
            if f > freqs[1]:
                ax.axvline(f, ymax=0.08, color=f"C{s.layer + len(psd)}", alpha=0.2 + 0.8 * w / max(top, 1e-12), lw=1)
    for f in peaks:
        ax.axvline(f, color="k", ls="--", lw=1)
    ax.set_xlabel("frequency (Hz)")
    _save(fig, ax, "power spectral density", "demonstrations' actions; ticks: modes' frequencies; dashed: peaks", path)


def inspect_checkpoint(cfg: DictConfig) -> str:
    """Load ``cfg.checkpoint``, write the PNGs into ``cfg.out`` and return the printed report."""
    ckpt = Path(cfg.checkpoint)
    config = read_checkpoint_config(ckpt)
    policy = SequencePolicy.from_pretrained(ckpt)
    dt = config["control_period"]
    if not dt:
        raise ValueError(f"checkpoint {ckpt} does not record its control period; re-save it with a current Cadence")
    after = spectrum(policy)
    start, how = initial_policy(ckpt, Path(cfg.init) if cfg.init else None, cfg.seed)
    before = spectrum(start) if start is not None else None
    init = InitConfig(**policy.cfg.backbone_kwargs.get("init", {}))
    out = Path(cfg.out) if cfg.out else ckpt.parent.parent / "inspect"
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"{ckpt}: {policy.cfg.backbone} ({policy.backbone.cfg.variant}), control period {dt:g} s "
             f"({1 / dt:g} Hz), init {init.kind}" + (f" at {init.peaks_hz} Hz" if init.kind == "data" else ""),
             f"before = init {how}", "", spectrum_table(after, before), ""]  # fmt: skip
    nyquist = 0.5 / dt
    modes = np.concatenate([s.frequency_hz for s in after + (before or [])])
    floor = max(nyquist / 1000, 0.5 * modes[modes > 0].min(initial=nyquist))  # lowest frequency on the log axes
    dataset = cfg.dataset or config.get("extra", {}).get("run", {}).get("dataset")
    peaks = np.asarray(init.peaks_hz or [])
    if dataset and Path(dataset).is_dir():
        freqs, psd = action_spectrum(Path(dataset), dt, init.welch_segment_s)
        peaks = spectral_peaks(freqs, psd, init.n_peaks)
        plot_action_spectrum(freqs, psd, after, peaks, out / PLOTS[2])
        lines.append(f"demonstrations' action peaks ({dataset}): " + (", ".join(f"{f:.3f} Hz" for f in peaks) or "none"))
    else:
        lines.append(f"no dataset (given: {dataset}): {PLOTS[2]} skipped; pass dataset=DIR")
    plot_histograms(after, before, peaks, out / PLOTS[0], floor, nyquist)
    plot_radius(after, before, out / PLOTS[1], floor)
    lines.append(f"plots: {', '.join(str(out / p) for p in PLOTS if (out / p).exists())}")
    return "\n".join(lines)
