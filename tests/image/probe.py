"""Run inside the image (``python probe.py '<json list of PEM certificates>'``): print facts about it as JSON.

The image test mounts this file into a container of the image and judges the facts: who runs, which build
tools, CUDA packages, unwanted files, secrets and build-machine certificates it holds, which models it carries,
and what takes the space. Only the standard library, PyYAML (a BentoML dependency) and the image's own torch are used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

import yaml

BENTO = Path(os.environ.get("BENTO_PATH", "/home/bentoml/bento"))
TOOLS = ("gcc", "cc", "g++", "c++", "make", "git", "ld")
# nvidia-ml-py is BentoML's own dependency: pure-Python NVML bindings for GPU metrics, no CUDA in it.
CUDA = re.compile(r"^(nvidia-(?!ml-py$)|triton|cuda|cupy)", re.I)
UNWANTED_DIRS = {"tests", "data", "reports", ".venv", ".git", "bentos", "loadtests", "bench", ".pytest_cache"}
UNWANTED_NAMES = re.compile(r"(^\.env|\.csv$|\.xlsx$|^train\.py$|^conftest\.py$|^test_.*\.py$|\.bento$)")
SECRET_NAMES = {"credentials", ".netrc", ".git-credentials", "id_rsa", "id_ed25519", ".pypirc", ".env"}
SECRET_TEXT = re.compile(rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----|AKIA[0-9A-Z]{16}")
SKIP_ROOTS = ("/proc", "/sys", "/dev", "/tmp/probe.py")
MAX_SCANNED_BYTES = 2 * 1024 * 1024


def walk(top: str):
    """Every file under ``top`` (readable by this user), skipping pseudo file systems."""
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not os.path.join(folder, d).startswith(SKIP_ROOTS)]
        for name in files:
            yield Path(folder, name)


def unwanted_files() -> list[str]:
    """Test, data, report or developer files in the bento's source or anywhere under the bento."""
    found = []
    for path in walk(str(BENTO)):
        relative = path.relative_to(BENTO)
        if relative.parts[0] == "models":
            continue
        if UNWANTED_DIRS & set(relative.parts[:-1]) or UNWANTED_NAMES.search(path.name):
            found.append(str(relative))
    found += [str(p) for p in walk("/app/.venv") if {"tests", "test"} & set(p.parts)]
    return sorted(found)


def secrets() -> list[str]:
    """Credential files and private keys or AWS access key ids anywhere in the image."""
    found = []
    for path in walk("/"):
        if path.name in SECRET_NAMES and path.is_file():
            found.append(str(path))
            continue
        if path.suffix in (".so", ".pyc", ".whl", ".parquet", ".joblib") or ".so." in path.name:
            continue
        try:
            if path.is_symlink() or path.stat().st_size > MAX_SCANNED_BYTES:
                continue
            if SECRET_TEXT.search(path.read_bytes()):
                found.append(str(path))
        except OSError:
            continue
    return sorted(found)


def build_cas(pems: list[str]) -> int:
    """How many of the given certificates are in the image's trust store."""
    stores = [p for p in [*walk("/etc/ssl"), *walk("/usr/local/share/ca-certificates")] if p.is_file()]
    text = "".join(p.read_text(errors="replace") for p in stores)
    return sum(1 for pem in pems if pem and pem.split("-----")[2].strip() in text)


def models() -> list[str]:
    """The models bento.yaml lists, each present in the bento's model store (else marked missing)."""
    info = yaml.safe_load((BENTO / "bento.yaml").read_text())
    tags = [m["tag"] for service in info.get("services", []) for m in service.get("models", [])]
    tags += [m["tag"] for m in info.get("models", [])]
    return [t if (BENTO / "models" / t.replace(":", "/")).is_dir() else f"{t} MISSING" for t in sorted(set(tags))]


def sizes_mb() -> dict[str, float]:
    """Megabytes on disk of the environment, the bento, the base system, and the largest installed packages."""

    def size(top: Path) -> float:
        return round(sum(p.lstat().st_size for p in walk(str(top))) / 1e6, 1)

    site = next(Path("/app/.venv/lib").glob("python*/site-packages"))
    packages = {
        p.name: size(p) for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__"))
    }
    largest = dict(sorted(packages.items(), key=lambda item: -item[1])[:10])
    return {"/app/.venv": size(Path("/app/.venv")), "bento": size(BENTO), "/usr": size(Path("/usr")), **largest}


def main() -> None:
    """Print the facts as one JSON line."""
    import torch

    facts = {
        "uid": os.getuid(),
        "tools": [t for t in TOOLS if shutil.which(t)] + (["/usr/lib/gcc"] if Path("/usr/lib/gcc").exists() else []),
        "cuda_packages": sorted(d.metadata["Name"] for d in metadata.distributions() if CUDA.match(d.metadata["Name"])),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "unwanted_files": unwanted_files(),
        "secrets": secrets(),
        "build_cas": build_cas(json.loads(sys.argv[1]) if len(sys.argv) > 1 else []),
        "models": models(),
        "sizes_mb": sizes_mb(),
    }
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
