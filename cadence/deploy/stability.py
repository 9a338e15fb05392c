"""Long-run check of a deployed policy: does its state stay finite and bounded for millions of steps?

A stable recurrence driven by bounded inputs has a bounded state; a conservative one (LinOSS-IMEX,
|λ| = 1) driven by random inputs grows at most like a random walk, ~√t; a mode with |λ| > 1 grows
exponentially. :func:`state_envelope` records the largest state entry over consecutive spans of an
episode of random observations, so the three cases can be told apart by how the envelope grows.
"""

from __future__ import annotations

import numpy as np

from .controller import Controller

SAMPLE_EVERY = 64  # steps between reads of the state (reading it costs as much as a step)


def state_envelope(controller: Controller, n_steps: int, spans: int = 4, obs_scale: float = 3.0,
                   seed: int = 0) -> np.ndarray:  # fmt: skip
    """Max |state entry| over each of ``spans`` equal spans of one ``n_steps``-step episode, (spans,).

    Observations are drawn uniformly within ``obs_scale`` training standard deviations of the
    training mean. Raises ``FloatingPointError`` at the first sampled state that is not finite.
    """
    if n_steps % spans or n_steps < spans:
        raise ValueError(f"n_steps={n_steps} must be a positive multiple of spans={spans}")
    rng = np.random.default_rng(seed)
    norm = controller.step.policy.obs_norm
    mean, std = norm.mean.cpu().numpy(), norm.std.cpu().numpy()
    controller.reset()
    envelope = np.zeros(spans)
    per_span = n_steps // spans
    for span in range(spans):
        for start in range(0, per_span, SAMPLE_EVERY):
            n, t = min(SAMPLE_EVERY, per_span - start), span * per_span + start
            try:
                for o in mean + std * rng.uniform(-obs_scale, obs_scale, (n, mean.size)).astype(np.float32):
                    controller(o)
            except FloatingPointError as e:  # the controller refuses a non-finite action: the state diverged
                raise FloatingPointError(f"state is not finite within steps {t}…{t + n} ({e})") from e
            peak = max(float(s.abs().max()) for s in controller.state)
            if not np.isfinite(peak):
                raise FloatingPointError(f"state is not finite after {t + n} steps")
            envelope[span] = max(envelope[span], peak)
    return envelope
