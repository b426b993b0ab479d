"""Print pip constraints that pin each dependency of pyproject.toml to its lower bound
(`name>=X,<Y` becomes `name==X`): the lowest supported set, which `make test-min` installs.
torch is left out: the job uses the CPU build the main job uses (TORCH_SPEC)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

LOWER = re.compile(r"^([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*.*?>=\s*([^,;\s]+)")


def lowest(dependencies: list[str], skip: set[str]) -> list[str]:
    pins = []
    for requirement in dependencies:
        match = LOWER.match(requirement)
        if match is None:
            sys.exit(f"{requirement!r} has no lower bound (>=): give it one in pyproject.toml")
        name, version = match.groups()
        if name.lower() not in skip:
            pins.append(f"{name}=={version}")
    return pins


if __name__ == "__main__":
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    print("\n".join(lowest(project["dependencies"], skip={"torch"})))
