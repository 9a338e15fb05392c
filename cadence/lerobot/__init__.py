"""LeRobot plug-in: Cadence policies as LeRobot policy type ``linoss`` and Cadence tasks as env type ``cadence``.

LeRobot finds the plug-in through ``--env.discover_packages_path=cadence.lerobot``: it imports this package
and its modules before parsing the command line, which registers both types (``--policy.discover_packages_path``
works too, except next to ``--policy.path``). In Python, ``import cadence.lerobot`` does the same.
See ``docs/lerobot.md``.

Modules (LeRobot's layout): ``configuration_linoss`` (the config), ``modeling_linoss`` (the policy),
``processor_linoss`` (normalization pipelines), ``env`` (the env config), ``export`` (a Cadence checkpoint
in LeRobot's ``save_pretrained`` layout).
"""

from .configuration_linoss import CadenceLinOSSConfig
from .env import CadenceEnvConfig

__all__ = ["CadenceEnvConfig", "CadenceLinOSSConfig"]
