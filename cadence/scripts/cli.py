"""The one entry wrapper of every Cadence command: ``cadence-train``, ``-eval``, ``-collect``, ``-compare``,
``-demo``, ``-inspect`` and ``python -m cadence.scripts.compare_cell`` (docs/faults.md).

``@command(NAME, CONFIG)`` turns ``task(cfg)`` into the Hydra app of ``cadence/configs/CONFIG.yaml``, and:

* checks the command line first (:func:`preflight`), before the task imports torch, LeRobot or anything
  heavy (scripts import those inside their task): the config is composed with the command's overrides, a
  required value left out (``???``), a number or boolean given as something else (``algo.steps=abc``,
  against the YAML default, which tests/configs proves equal to the dataclass default) and a device this
  machine does not have are refused — all in well under two seconds. Hydra's flags (``--help``,
  ``--multirun``, ``--cfg`` ...) go straight to Hydra; the jobs of a multirun check themselves.
* ends a problem the user can fix — a value a key does not take, a missing, corrupt or foreign file, a full
  disk (``disk_full`` says what was kept and how to continue) — with one line on stderr,
  ``cadence-NAME: error: PROBLEM; FIX``, and exit code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import functools
import logging
import re
import sys
from collections.abc import Callable
from typing import NoReturn

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cadence.configs import CONFIG_DIR, check_device, check_value_types, compose

EXIT_CODE = 2
USER_ERRORS = (ValueError, OSError, FloatingPointError)
"""What a user can fix: bad values and data (ValueError), files (OSError: missing, unreadable, disk full), a
diverging run (FloatingPointError)."""


def one_line(text: str) -> str:
    """``text`` (an exception's message, Hydra's included) on one line: Hydra's config search path dropped,
    option lists joined by commas, paragraphs by semicolons."""
    text = text.split("\nConfig search path:")[0].strip()
    text = re.sub(r":\n\t", ": ", text).replace("\n\t", ", ")
    return re.sub(r"\s*\n\s*", " ", re.sub(r"\s*\n\s*\n\s*", "; ", text))


def fail(name: str, problem: str) -> NoReturn:
    """Print ``NAME: error: PROBLEM`` as one line on stderr and exit with :data:`EXIT_CODE`."""
    print(f"{name}: error: {one_line(problem)}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_CODE)


def describe(e: BaseException, disk_full: str) -> str:
    """The one-line problem of ``e``; a full disk (ENOSPC) says what was kept (``disk_full``)."""
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        where = f" writing {e.filename}" if e.filename else ""
        return f"no space left on the device{where}; {disk_full}"
    if isinstance(e, OmegaConfBaseException | HydraException) and e.__cause__ is not None:
        return f"{e} ({str(e.__cause__).splitlines()[0]})"
    return str(e)


def _group_choice(override: str) -> bool:
    """Whether ``override`` picks a config group option (``policy=gru``, ``hydra/launcher=joblib``)."""
    key = override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
    return (CONFIG_DIR / key).is_dir()


def preflight(name: str, config_name: str, argv: list[str]) -> DictConfig | None:
    """Compose ``config_name`` with the overrides ``argv`` and refuse what is wrong with it (module docstring);
    returns the config, or None when ``argv`` holds Hydra flags (``-m``, ``--help`` ...) that Hydra handles."""
    if any(a.startswith("-") for a in argv):
        return None
    try:
        cfg = compose(config_name, argv)
        defaults = compose(config_name, [a for a in argv if _group_choice(a)])
    except (HydraException, OmegaConfBaseException) as e:
        fail(name, describe(e, ""))
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        fail(name, f"{missing[0]} is required; pass {missing[0]}=VALUE (see `{name} --help`)")
    try:
        check_value_types(cfg, defaults)
        if "device" in cfg:
            check_device(cfg.device)
    except ValueError as e:
        fail(name, str(e))
    return cfg


QUIET_LOGGERS = ("lerobot", "OpenGL")
"""Libraries whose INFO records (a video-codec line per dataset part, an OpenGL notice) drown a command's own;
their warnings and errors still show."""


def command(name: str, config_name: str, disk_full: str = "free some space and run the command again"
            ) -> Callable[[Callable[[DictConfig], object]], Callable[[], object]]:  # fmt: skip
    """Decorator: ``task(cfg)`` as the command ``name`` over ``cadence/configs/CONFIG_NAME.yaml`` (module docstring);
    ``disk_full`` completes the message of a full disk: what was kept, and how to continue."""

    def decorate(task: Callable[[DictConfig], object]) -> Callable[[], object]:
        @functools.wraps(task)  # Hydra finds the script (its config path, its job name) through __wrapped__
        def job(cfg: DictConfig) -> object:
            for logger in QUIET_LOGGERS:
                logging.getLogger(logger).setLevel(logging.WARNING)
            try:
                return task(cfg)
            except USER_ERRORS as e:
                fail(name, describe(e, disk_full))

        app = hydra.main(config_path="../configs", config_name=config_name, version_base=None)(job)

        @functools.wraps(task)
        def main() -> object:
            preflight(name, config_name, sys.argv[1:])
            return app()

        return main

    return decorate
