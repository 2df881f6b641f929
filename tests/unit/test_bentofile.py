"""bentofile.yaml against pyproject.toml: the image installs the project's own pins, with CPU-only torch."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.support import ROOT

CUDA = re.compile(r"^(nvidia-|triton|cuda|cupy)", re.I)


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for line in requirements:
        name, _, version = line.partition("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def _bentofile() -> dict:
    return yaml.safe_load((ROOT / "bentofile.yaml").read_text())


def test_bento_packages_carry_pyproject_pins() -> None:
    project = _pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    bento = _pins(_bentofile()["python"]["packages"])
    assert bento, "bentofile.yaml lists no packages"
    for name, version in bento.items():
        assert name in project, f"{name} is in bentofile.yaml but not a dependency in pyproject.toml"
        expected = f"{project[name]}+cpu" if name == "torch" else project[name]
        assert version == expected, f"{name}: bentofile.yaml pins {version}, pyproject.toml {project[name]}"


def test_bento_packages_hold_no_cuda_build() -> None:
    packages = _bentofile()["python"]["packages"]
    assert not [p for p in packages if CUDA.match(p)]
    assert "xgboost-cpu" in _pins(packages) and "xgboost" not in _pins(packages)


def test_bento_includes_only_the_service_and_the_package() -> None:
    # Anchored: "pricing/" alone would match any folder of that name, podman's storage under build/ included.
    assert _bentofile()["include"] == ["/service.py", "/pricing/"]
