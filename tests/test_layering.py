"""Data flows one way: env/dataset → policy → trainer → evaluation → comparison/report → scripts. A module may
import its own layer and the layers below it, never one above; no library module imports a CLI script."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cadence"
# for each part of the package: the parts it must never import
FORBIDDEN = {
    "envs": ("datasets", "policies", "training", "evaluation", "comparison", "deploy", "lerobot", "scripts"),
    "policies": ("datasets", "training", "evaluation", "comparison", "deploy", "lerobot", "scripts"),
    "datasets": ("training", "evaluation", "comparison", "deploy", "lerobot", "scripts"),
    "evaluation": ("training", "comparison", "lerobot", "scripts"),
    "inspection": ("training", "evaluation", "comparison", "deploy", "lerobot", "scripts"),
    "deploy": ("training", "comparison", "lerobot", "scripts"),
    "training": ("comparison", "deploy", "lerobot", "scripts"),
    "lerobot": ("comparison", "scripts"),
    "comparison": ("lerobot", "scripts"),
    "configs": ("envs", "datasets", "policies", "training", "evaluation", "comparison", "deploy", "lerobot", "scripts"),
    "progress": ("envs", "datasets", "policies", "training", "evaluation", "comparison", "deploy", "lerobot", "scripts"),
    "spectral": ("envs", "datasets", "policies", "training", "evaluation", "comparison", "deploy", "lerobot", "scripts"),
    "atomic": ("configs", "progress", "spectral", "envs", "datasets", "policies", "training", "evaluation", "comparison",
               "deploy", "lerobot", "scripts"),
}


def imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every ``cadence.*`` module that ``path`` (under the package folder ``root``) imports, relative imports
    resolved, imports inside functions included."""
    package = ["cadence", *path.relative_to(root).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found |= {name} | {f"{name}.{a.name}" for a in node.names}
    return {m for m in found if m == "cadence" or m.startswith("cadence.")}


def part_of(module: str) -> str | None:
    """``cadence.training.bc`` -> ``training``; ``cadence.evaluation`` -> ``evaluation``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_no_import_climbs_back_up(path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    imports = imported_modules(path)
    bad = sorted(m for m in imports if part_of(m) in FORBIDDEN.get(own, ()))
    assert not bad, f"cadence/{path.relative_to(PACKAGE)} ({own}) imports {bad}"
    if own != "scripts":
        scripts = sorted(m for m in imports if part_of(m) == "scripts")
        assert not scripts, f"library module cadence/{path.relative_to(PACKAGE)} imports the CLI script(s) {scripts}"


def test_the_checker_sees_relative_and_nested_imports(tmp_path):
    """The test above can fail: imports of training and of a script from inside a policies function are found."""
    fake = tmp_path / "cadence" / "policies" / "backbones" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from ...training.bc import BCConfig\n    import cadence.scripts.train\n"
                    "    from . import base\n")
    found = imported_modules(fake, tmp_path / "cadence")
    assert {"cadence.training.bc", "cadence.scripts.train", "cadence.policies.backbones.base"} <= found
