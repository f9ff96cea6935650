"""Build the sandbox node image without an image registry.

1. ``mmdebstrap`` makes a minimal Debian root filesystem holding :data:`PACKAGES` (python3 with the data stack,
   coq, and the command-line tools a shell task expects), fetching packages through the host's own apt sources file
   (so whatever mirror or proxy the host uses; no mirror is named here);
2. the tarball is imported as the base image (``ponder-node-base:<hash of the package list>``, so a changed list
   makes a new base instead of reusing a stale one);
3. ``node/Dockerfile`` adds the sandbox user, the runner and the defaults on top (the legacy builder, which needs
   no registry either).

Hosts that reach a registry can build ``docker/node.Dockerfile`` from a public Python image instead.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker.errors
from docker.client import DockerClient

from ponder.errors import ConfigError, SandboxUnavailable

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
NODE_DIR = Path(__file__).parent / "node"
# What an agent can count on inside a sandbox (the descriptions of the tools in ponder.tools._builtin say so):
# Python with the data stack users reach for first, coq for proofs, and the command-line tools shell tasks use.
# curl and wget are there because scripts call them, though the sandbox has no network.
PYTHON_PACKAGES = (
    "python3",
    "python3-numpy",
    "python3-pandas",
    "python3-scipy",
    "python3-matplotlib",
    "python3-sympy",
    "python3-openpyxl",
    "python3-yaml",
    "python3-requests",
    "python3-bs4",
)
SHELL_PACKAGES = (
    "procps",
    "psmisc",
    "lsof",
    "findutils",
    "grep",
    "sed",
    "gawk",
    "file",
    "bc",
    "jq",
    "tree",
    "zip",
    "unzip",
    "xz-utils",
    "bzip2",
    "sqlite3",
    "git",
    "less",
    "nano",
    "vim-tiny",
    "curl",
    "wget",
    "diffutils",
    "patch",
    "make",
    "ca-certificates",
)
PACKAGES = (*PYTHON_PACKAGES, "coq", *SHELL_PACKAGES)
SOURCES_FILES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
DIGEST_LABEL = "ponder.node.digest"
SLIM = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")


@dataclass
class BuildReport:
    image: str
    built: bool
    seconds: float
    size_mb: float


def packages_digest(packages: tuple[str, ...] = PACKAGES) -> str:
    """Names the base image built from ``packages`` (its tag)."""
    return hashlib.sha256("\0".join(packages).encode()).hexdigest()[:12]


def node_digest() -> str:
    """A hash of the package list and of the files the top layer is built from; the image carries it as a label,
    so a stale image (an older runner, fewer packages) is rebuilt by ``build-image`` and refused by the manager."""
    h = hashlib.sha256(packages_digest().encode() + b"\0")
    for path in sorted(p for p in NODE_DIR.iterdir() if p.is_file() and p.suffix != ".pyc"):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def host_sources() -> Path:
    for path in SOURCES_FILES:
        if path.is_file() and path.stat().st_size > 0:
            return path
    raise ConfigError(
        "found no apt sources file (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)",
        hint="build on a Debian host, pass --sources FILE, or build docker/node.Dockerfile from a registry image",
    )


def host_suite(os_release: Path = Path("/etc/os-release")) -> str:
    for line in os_release.read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise ConfigError("cannot tell the host's Debian release from /etc/os-release", hint="pass --suite, e.g. bookworm")


def mmdebstrap_command(suite: str, sources: Path, out: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    command = [
        "mmdebstrap",
        "--variant=minbase",
        "--format=tar",
        f"--include={','.join(packages)}",
        "--aptopt=APT::Install-Recommends false",
    ]
    command += [f"--dpkgopt=path-exclude={p}" for p in SLIM]
    return [*command, suite, str(out), str(sources)]


def build_image(
    image: str,
    *,
    docker_host: str | None = None,
    force: bool = False,
    suite: str | None = None,
    sources: Path | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> BuildReport:
    """Build ``image`` (and its base) unless it exists; ``force`` rebuilds both."""
    started = time.monotonic()
    host = docker_host or DEFAULT_DOCKER_HOST
    try:
        client = DockerClient(base_url=host, timeout=900)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"cannot reach the Docker engine at {host}: {exc}") from exc
    try:
        if not force:
            try:
                existing = client.images.get(image)
            except docker.errors.ImageNotFound:
                existing = None
            if existing is not None and (existing.labels or {}).get(DIGEST_LABEL) == node_digest():
                say(f"{image} is already built and current (use --force to rebuild)")
                return BuildReport(image, False, time.monotonic() - started, existing.attrs["Size"] / 1e6)
        repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        base = f"{repo}-base:{packages_digest()}"
        if force or not _has(client, base):
            _import_base(client, base, suite or host_suite(), sources or host_sources(), say)
        say(f"building {image} on {base}")
        try:
            built, _ = client.images.build(
                path=str(NODE_DIR),
                tag=image,
                buildargs={"BASE": base},
                labels={DIGEST_LABEL: node_digest()},
                rm=True,
                forcerm=True,
                pull=False,
            )
        except docker.errors.BuildError as exc:
            tail = "".join(str(chunk.get("stream", "")) for chunk in exc.build_log)[-2000:]
            raise SandboxUnavailable(f"docker build of {image} failed: {exc.msg}\n{tail}") from exc
        return BuildReport(image, True, time.monotonic() - started, built.attrs["Size"] / 1e6)
    finally:
        client.close()


def _has(client: DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def _import_base(client: DockerClient, base: str, suite: str, sources: Path, say: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="ponder-node-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        command = mmdebstrap_command(suite, sources, rootfs)
        say(f"making the root filesystem: {' '.join(command)}")
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise ConfigError(
                "mmdebstrap is not installed", hint="`apt-get install mmdebstrap`, or build docker/node.Dockerfile"
            ) from exc
        if done.returncode != 0:
            raise SandboxUnavailable(f"mmdebstrap failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        say(f"importing {rootfs.stat().st_size / 1e6:.0f} MB as {base}")
        repo, _, tag = base.rpartition(":")
        client.api.import_image(src=str(rootfs), repository=repo, tag=tag)
