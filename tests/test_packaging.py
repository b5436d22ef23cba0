"""setup.cfg's version floors are the versions .ci/oldest checks, and that script runs the README's tests."""

from __future__ import annotations

import configparser
import re

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO, readme_test_command

CONSTRAINTS = REPO / ".ci" / "oldest-constraints.txt"
OLDEST = REPO / ".ci" / "oldest"


def _declared() -> tuple[dict[str, Requirement], SpecifierSet]:
    """setup.cfg's requirements (install_requires and every extra) by canonical name, and python_requires."""
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    lines = setup["options"]["install_requires"].splitlines()
    lines += [line for extra in setup["options.extras_require"].values() for line in extra.splitlines()]
    requirements = [Requirement(line) for line in lines if line.strip()]
    python = SpecifierSet(setup["options"]["python_requires"])
    return {canonicalize_name(r.name): r for r in requirements}, python


def _pinned() -> dict[str, Version]:
    """The constraints file's ``name==version`` lines by canonical name."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _floor(requirement: Requirement) -> Version | None:
    floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    return max(floors, default=None)


def test_every_floor_is_the_checked_version_and_every_checked_dependency_has_one():
    declared, _ = _declared()
    pinned = _pinned()
    floors = {name: _floor(requirement) for name, requirement in declared.items()}
    for name, floor in floors.items():
        if floor is not None:
            assert name in pinned, f"setup.cfg's {name}>={floor} is not in {CONSTRAINTS.name}"
            assert pinned[name] == floor, (
                f"{name}: setup.cfg says >={floor}, {CONSTRAINTS.name} checks {pinned[name]}"
            )
    for name in pinned.keys() & declared.keys():
        assert floors[name] is not None, (
            f"{name} is checked at {pinned[name]} but setup.cfg gives it no floor"
        )


def test_the_check_runs_the_oldest_python_and_the_readme_test_command():
    _, python = _declared()
    script = OLDEST.read_text()
    oldest_python = re.search(r"PYTHON=\$\{PYTHON:-python(\d+\.\d+)\}", script).group(1)
    assert python == SpecifierSet(f">={oldest_python}")
    install, tests = readme_test_command().split(" && ", 1)
    assert install == 'pip install -q -e ".[test,jax]"' and '-e ".[test,jax,torch]"' in script
    assert tests in script.splitlines()
