"""What building and running the image needs on a machine with no Docker daemon and no registry.

Everything here exists because of this kind of machine, not because of the image, and never reaches the
bentofile or the image (see ../shared/notes/container-image.md for the recipe):

- buildah, podman, runc and debootstrap come from apt when missing (as root), and all of their state
  (storage, run root, temporary files, configuration) lives under one folder, ``build/image/`` (git-ignored);
- runc instead of crun (crun refuses cgroup hybrid mode), the cgroupfs manager, and rlimits the machine allows;
- the base image BentoML's template starts from, ``python:3.11-slim``, is made locally with debootstrap (no
  registry to pull it from) and cached as an OCI archive;
- builds see the machine's CA bundle (its TLS proxy's certificate) through a read-only bind mount only, and
  PyTorch's CPU index, unreachable here, is stood in for by a loopback server of the same CPU wheel;
- containers run with ``--network host`` only, so netavark adds no iptables rules.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import inspect
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "build" / "image"
BIN = Path(sys.executable).parent
BASE_IMAGE = "docker.io/library/python:3.11-slim"  # what BentoML's Debian template starts FROM
SUITE = "bookworm"
BASE_PACKAGES = ("python3.11", "python3.11-venv", "python3-venv", "python3-pip", "ca-certificates")
SLIM_EXCLUDED = ("doc", "man", "groff", "info", "lintian", "linda", "locale")  # as Docker's Debian slim images
TOOLS = {"buildah": "buildah", "podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}  # command: package
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
# Without CAP_SYS_RESOURCE podman's defaults for root (nofile 1048576, nproc 4194304) are refused.
ULIMITS = ("nofile=20000:20000", "nproc=32768:32768")
TORCH_REQUIREMENT = "torch==2.13.0+cpu"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


class HarnessError(RuntimeError):
    """The machine cannot build or run the image; the message says what failed."""


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[image-test] {message}", file=sys.stderr, flush=True)


def run(command: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 900, **kwargs) -> str:
    """Run a command to completion and return its stdout; raise HarnessError with its output if it fails."""
    proc = subprocess.run(
        list(command), env=env, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if proc.returncode != 0:
        raise HarnessError(f"{' '.join(command)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-6000:]}")
    return proc.stdout


# ---------------------------------------------------------------------------------------------------
# Tools


def ensure_tools() -> None:
    """Install buildah, podman, runc and debootstrap with apt when any is missing; fail loudly when impossible."""
    missing = sorted({package for command, package in TOOLS.items() if shutil.which(command) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise HarnessError(f"{', '.join(missing)} missing and not running as root to install them with apt")
    log(f"installing {' '.join(missing)} with apt")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], env=apt_env, timeout=300)
    run(["apt-get", "install", "-y", "-q", *missing], env=apt_env, timeout=600)
    still = [command for command in TOOLS if shutil.which(command) is None]
    if still:
        raise HarnessError(f"apt installed {missing} but {still} still not on PATH")


# ---------------------------------------------------------------------------------------------------
# Podman and buildah, confined to WORK


@dataclass(frozen=True)
class Podman:
    """podman and buildah with their storage and configuration under ``work``."""

    work: Path = WORK

    @functools.cached_property
    def env(self) -> dict[str, str]:
        """The process environment that points podman, buildah and their temporary files at ``work``."""
        for name in ("storage", "run", "tmp", "libpod-tmp"):
            (self.work / name).mkdir(parents=True, exist_ok=True)
        storage, containers = self.work / "storage.conf", self.work / "containers.conf"
        storage.write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{self.work / "storage"}"\nrunroot = "{self.work / "run"}"\n'
        )
        containers.write_text(
            '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'tmp_dir = "{self.work / "libpod-tmp"}"\n'
            f"[containers]\ndefault_ulimits = [{', '.join(map(_toml_string, ULIMITS))}]\n"
        )
        return {
            **os.environ,
            "CONTAINERS_STORAGE_CONF": str(storage),
            "CONTAINERS_CONF": str(containers),
            "TMPDIR": str(self.work / "tmp"),
        }

    def __call__(self, *args: str, timeout: float = 900) -> str:
        """Run ``podman ARGS``; return its stdout."""
        return run(["podman", *args], env=self.env, timeout=timeout)

    def buildah(self, *args: str, timeout: float = 900) -> str:
        """Run ``buildah ARGS``; return its stdout."""
        return run(["buildah", *args], env=self.env, timeout=timeout)

    def has_image(self, name: str) -> bool:
        """Whether the local storage holds the image ``name``."""
        return subprocess.run(["podman", "image", "exists", name], env=self.env, check=False).returncode == 0

    def image_size(self, name: str) -> int:
        """The image's size in bytes, as podman reports it."""
        return int(self("image", "inspect", "--format", "{{.Size}}", name).strip())

    def running(self, name: str) -> bool:
        """Whether the container ``name`` is running."""
        state = subprocess.run(["podman", "inspect", "--format", "{{.State.Running}}", name], env=self.env,
                               capture_output=True, text=True, check=False)  # fmt: skip
        return state.stdout.strip() == "true"

    def logs(self, name: str) -> str:
        """The container's output, stdout and stderr interleaved."""
        return subprocess.run(["podman", "logs", name], env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, check=False).stdout  # fmt: skip

    def remove_container(self, name: str) -> None:
        """Stop and remove a container if it exists."""
        subprocess.run(["podman", "rm", "-f", "-t", "5", name], env=self.env, capture_output=True, check=False)


def _toml_string(text: str) -> str:
    return '"' + text + '"'


# ---------------------------------------------------------------------------------------------------
# The base image


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line sources), else deb.debian.org."""
    for path in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if path.exists():
            match = re.search(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+/debian)/?\s", path.read_text(), re.M)
            if match:
                return match.group(1)
    return DEFAULT_MIRROR


def base_archive(mirror: str) -> Path:
    """The cached OCI archive of the base image, named by a hash of everything that shapes it."""
    steps = [inspect.getsource(step) for step in (ensure_base_image, _shape_like_python_slim, _import_rootfs)]
    recipe = "\n".join([BASE_IMAGE, SUITE, mirror, *BASE_PACKAGES, *steps])
    return WORK / f"base-{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}.oci.tar"


def ensure_base_image(podman: Podman) -> str:
    """Make ``python:3.11-slim`` available to builds: from storage, from the cached archive, or built afresh."""
    if podman.has_image(BASE_IMAGE):
        return "in storage"
    mirror = debian_mirror()
    archive = base_archive(mirror)
    if archive.exists():
        podman("load", "--input", str(archive))
        return f"loaded from {archive.relative_to(ROOT)}"
    started = time.monotonic()
    rootfs = WORK / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    log(f"debootstrap {SUITE} from {mirror} (about a minute)")
    run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs), mirror],
        timeout=900)  # fmt: skip
    _shape_like_python_slim(rootfs, mirror)
    _import_rootfs(podman, rootfs)
    shutil.rmtree(rootfs, ignore_errors=True)
    podman("image", "prune", "-f")
    for stale in WORK.glob(f"base-{SUITE}-*.oci.tar"):
        stale.unlink()
    podman("save", "--format", "oci-archive", "--output", str(archive), BASE_IMAGE)
    return f"built in {time.monotonic() - started:.0f} s and saved to {archive.relative_to(ROOT)}"


def _shape_like_python_slim(rootfs: Path, mirror: str) -> None:
    """Make a minbase rootfs look like the official python:3.11-slim: same commands, apt sources, no leftovers."""
    run(["chroot", str(rootfs), "apt-get", "clean"])
    for leftover in [*rootfs.joinpath("var/lib/apt/lists").glob("*"), *rootfs.joinpath("dev").glob("*")]:
        _remove(leftover)
    rootfs.joinpath("var/lib/apt/lists/partial").mkdir()
    security = mirror.removesuffix("/debian") + "/debian-security"
    rootfs.joinpath("etc/apt/sources.list").unlink(missing_ok=True)
    rootfs.joinpath("etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {mirror}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security}\nSuites: {SUITE}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    rootfs.joinpath("etc/apt/apt.conf.d/docker-no-recommends").write_text('APT::Install-Recommends "false";\n')
    # "slim": no documentation, manuals or translations, now or from later installs (licences stay).
    rootfs.joinpath("etc/dpkg/dpkg.cfg.d/docker-slim").write_text(
        "".join(f"path-exclude /usr/share/{d}/*\n" for d in SLIM_EXCLUDED) + "path-include /usr/share/doc/*/copyright\n"
    )
    for folder in SLIM_EXCLUDED:
        for path in rootfs.joinpath("usr/share", folder).glob("*"):
            if folder == "doc" and path.is_dir() and not path.is_symlink():
                for extra in path.iterdir():
                    if extra.name != "copyright":
                        _remove(extra)
            else:
                _remove(path)
    local_bin = rootfs / "usr/local/bin"
    for name, target in [("python", "python3.11"), ("python3", "python3.11"), ("python3.11", "python3.11"),
                         ("pip", "pip3"), ("pip3", "pip3"), ("pip3.11", "pip3")]:  # fmt: skip
        local_bin.joinpath(name).unlink(missing_ok=True)
        local_bin.joinpath(name).symlink_to(f"/usr/bin/{target}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _import_rootfs(podman: Podman, rootfs: Path) -> None:
    """Commit ``rootfs`` as BASE_IMAGE, upgraded from the updates and security suites."""
    container = podman.buildah("from", "scratch").strip()
    try:
        mount = podman.buildah("mount", container).strip()
        run(["cp", "-a", f"{rootfs}/.", mount])
        podman.buildah("umount", container)
        podman.buildah(
            "config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--env", "LANG=C.UTF-8",
            # uv (BentoML's template installs with it) trusts only its own roots unless told: this is Debian's bundle.
            "--env", f"SSL_CERT_FILE={HOST_CA_BUNDLE}",
            "--cmd", "python3", container,
        )  # fmt: skip
        # The security and updates suites now, so that no package (ca-certificates above all, whose bundle builds
        # see through a read-only mount) moves during an image build; pip may install outside a venv, as in the
        # official image.
        podman.buildah("run", "--network", "host", container, "--", "sh", "-c",
                       "apt-get update -q && apt-get upgrade -y -q && apt-get clean && rm -rf /var/lib/apt/lists/* "
                       "&& rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED", timeout=600)  # fmt: skip
        podman.buildah("commit", "--rm", container, BASE_IMAGE)
    except BaseException:
        subprocess.run(["buildah", "rm", container], env=podman.env, capture_output=True, check=False)
        raise


# ---------------------------------------------------------------------------------------------------
# What an image build needs from this machine


def host_ca_bundle() -> Path:
    """A copy of this machine's CA bundle (with its TLS proxy's certificate) to bind-mount into build steps."""
    copy = WORK / "ca-certificates.crt"
    shutil.copyfile(HOST_CA_BUNDLE, copy)
    return copy


def torch_cpu_wheel() -> Path:
    """The CPU torch wheel the CPU index serves, fetched once with pip (here: from the machine's wheel folder)."""
    folder = WORK / "cpu-index" / "torch"
    wheels = sorted(folder.glob("torch-*.whl"))
    if not wheels:
        log(f"fetching {TORCH_REQUIREMENT} with pip")
        run([str(BIN / "pip"), "download", "--quiet", "--no-deps", "--only-binary=:all:", "--retries", "1",
             "--extra-index-url", TORCH_CPU_INDEX, "--dest", str(folder), TORCH_REQUIREMENT], timeout=900)  # fmt: skip
        wheels = sorted(folder.glob("torch-*.whl"))
    if not wheels:
        raise HarnessError(f"pip download {TORCH_REQUIREMENT} left no wheel in {folder}")
    return wheels[-1]


@contextlib.contextmanager
def cpu_index() -> Iterator[str]:
    """Serve the CPU torch wheel as a package index on 127.0.0.1; yield its URL (every other package: 404)."""
    wheel = torch_cpu_wheel()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    wheel.parent.joinpath("index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="{quote(wheel.name)}#sha256={digest}">{wheel.name}</a></body></html>\n'
    )

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: uv asks for every package, and all but torch are 404s."""

    handler = functools.partial(Handler, directory=str(wheel.parent.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
