"""The manager's only contact with the Docker engine: hardened sandbox containers and their runner execs.

Every method here blocks (the docker SDK is synchronous); the manager calls them through ``asyncio.to_thread``.
Docker's exceptions are translated into :mod:`ponder.errors` here.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from typing import Any

import docker.errors
from docker.client import DockerClient
from docker.models.containers import Container
from docker.types import Ulimit

from ponder.config import ToolServerSettings
from ponder.errors import SandboxError, SandboxUnavailable
from ponder.toolserver._image import DEFAULT_DOCKER_HOST, DIGEST_LABEL, node_digest

LABEL = "ponder.toolserver"
INSTANCE_LABEL = "ponder.toolserver.instance"
OWNER_LABEL = "ponder.toolserver.owner"
RUNNER = ["python3", "-I", "/opt/ponder/runner.py"]
INIT = ["python3", "-I", "-S", "/opt/ponder/runner.py", "init"]
SANDBOX_USER = "1000:1000"
WORKSPACE = "/workspace"


def _start_time(pid: int) -> str | None:
    """A process's start time (clock ticks since boot), or None when no such process exists."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def owner_id() -> str:
    """Names this manager process: host, pid and start time (a pid alone may be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def owner_alive(owner: str) -> bool | None:
    """Whether the manager named by ``owner`` still runs; None when it ran on another host."""
    try:
        host, pid, started = owner.rsplit(":", 2)
        number = int(pid)
    except ValueError:
        return False  # unlabelled or malformed: made by no manager we know of
    if host != socket.gethostname():
        return None
    return _start_time(number) == started


@dataclass
class ExecSocket:
    """A started ``docker exec -i`` with its hijacked connection. ``sock`` carries Docker's multiplexed stream."""

    exec_id: str
    sock: socket.socket
    keep: Any  # the SDK's socket wrapper and HTTP response; closing them early would close ``sock``

    def close(self) -> None:
        for obj in (self.sock, self.keep):
            with contextlib.suppress(OSError):
                obj.close()


def hardening(settings: ToolServerSettings) -> dict[str, Any]:
    """Keyword arguments of ``containers.run`` that lock a sandbox down (see DESIGN.md "Sandbox")."""
    options: dict[str, Any] = {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {
            WORKSPACE: f"size={settings.workspace_size},uid=1000,gid=1000,mode=0700,exec,nosuid,nodev",
            "/tmp": "size=16m,uid=1000,gid=1000,mode=1777,noexec,nosuid,nodev",
        },
        "mem_limit": settings.memory,
        "memswap_limit": settings.memory,  # no swap on top of the memory limit
        "nano_cpus": int(settings.cpus * 1e9),
        "pids_limit": settings.pids_limit,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],  # and Docker's default seccomp profile, which we never disable
        "user": SANDBOX_USER,
        "working_dir": WORKSPACE,
        "ipc_mode": "private",
        "hostname": "sandbox",
        "ulimits": [Ulimit(name="nofile", soft=1024, hard=1024)],
    }
    if settings.runtime:
        options["runtime"] = settings.runtime
    return options


class DockerEngine:
    """Creates, lists and removes sandbox containers; starts runner execs."""

    def __init__(self, settings: ToolServerSettings) -> None:
        self.settings = settings
        self._client: DockerClient | None = None

    @property
    def client(self) -> DockerClient:
        if self._client is None:
            raise SandboxUnavailable("the Docker engine is not connected; start the manager first")
        return self._client

    def connect(self) -> dict[str, Any]:
        """Connect, check the engine answers, the image exists and the runtime (if any) is installed."""
        host = self.settings.docker_host or DEFAULT_DOCKER_HOST
        hint = (
            "start it (`dockerd &` as root, or `sudo systemctl start docker`) or set PONDER_TOOLSERVER__DOCKER_HOST "
            "to its socket"
        )
        if host.startswith("unix://") and not os.path.exists(host.removeprefix("unix://")):
            raise SandboxUnavailable(f"cannot reach the Docker engine at {host}: no such socket", hint=hint)
        client: DockerClient | None = None
        try:
            client = DockerClient(base_url=host, timeout=30, max_pool_size=32)
            info: dict[str, Any] = client.info()
        except docker.errors.DockerException as exc:
            if client is not None:
                client.close()
            raise SandboxUnavailable(f"cannot reach the Docker engine at {host}: {exc}", hint=hint) from exc
        try:
            image = client.images.get(self.settings.image)
        except docker.errors.ImageNotFound as exc:
            client.close()
            raise SandboxUnavailable(
                f"the sandbox image {self.settings.image!r} is not on this Docker engine",
                hint="build it with `ponder toolserver build-image`",
            ) from exc
        except docker.errors.DockerException as exc:
            client.close()
            raise SandboxUnavailable(f"the Docker engine at {host} failed: {exc}") from exc
        built_from = (image.labels or {}).get(DIGEST_LABEL)
        if built_from is not None and built_from != node_digest():
            client.close()
            raise SandboxUnavailable(
                f"the sandbox image {self.settings.image!r} holds an older runner than this version of ponder",
                hint="rebuild it with `ponder toolserver build-image` (only the top layer is rebuilt: seconds)",
            )
        runtime = self.settings.runtime
        if runtime and runtime not in (info.get("Runtimes") or {}):
            client.close()
            raise SandboxUnavailable(
                f"the container runtime {runtime!r} is not configured in the Docker engine",
                hint="install gVisor (`apt-get install runsc`, then `runsc install` and restart dockerd) or unset "
                "PONDER_TOOLSERVER__RUNTIME",
            )
        self._client = client
        return info

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def labels(self) -> dict[str, str]:
        return {LABEL: "1", INSTANCE_LABEL: self.settings.instance, OWNER_LABEL: owner_id()}

    def start_container(self) -> str:
        try:
            container = self.client.containers.run(
                self.settings.image,
                INIT,
                detach=True,
                auto_remove=True,  # a container that stops (its manager died: see runner.serve) leaves nothing
                labels=self.labels(),
                **hardening(self.settings),
            )
        except docker.errors.ImageNotFound as exc:
            raise SandboxUnavailable(f"the sandbox image {self.settings.image!r} is gone: {exc}") from exc
        except docker.errors.DockerException as exc:
            raise SandboxError(f"could not start a sandbox container: {exc}") from exc
        return str(container.id)

    def start_runner(self, container_id: str) -> ExecSocket:
        api = self.client.api
        try:
            exec_id = api.exec_create(
                container_id, RUNNER, stdin=True, stdout=True, stderr=True, user=SANDBOX_USER, workdir=WORKSPACE
            )["Id"]
            wrapper = api.exec_start(exec_id, socket=True)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"could not start the runner in sandbox {container_id[:12]}: {exc}") from exc
        sock = getattr(wrapper, "_sock", wrapper)
        return ExecSocket(exec_id=exec_id, sock=sock, keep=wrapper)

    def exec_background(self, container_id: str, argv: list[str], user: str) -> str:
        """Start ``argv`` in the container as ``user`` and return at once (the process lives until the container
        goes). For a task environment's programs only (``Manager.start_background``), never for tool calls."""
        api = self.client.api
        try:
            exec_id = str(api.exec_create(container_id, argv, user=user, workdir=WORKSPACE)["Id"])
            api.exec_start(exec_id, detach=True)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"could not start a background program in sandbox {container_id[:12]}: {exc}") from exc
        return exec_id

    def exec_exit_code(self, exec_id: str) -> int | None:
        try:
            code = self.client.api.exec_inspect(exec_id).get("ExitCode")
        except docker.errors.DockerException:
            return None
        return int(code) if code is not None else None

    def container_running(self, container_id: str) -> bool:
        try:
            container: Container = self.client.containers.get(container_id)
        except docker.errors.NotFound:
            return False
        except docker.errors.DockerException:
            return False
        return bool(container.attrs.get("State", {}).get("Running"))

    def remove(self, container_id: str) -> None:
        try:
            self.client.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise SandboxError(f"could not remove sandbox {container_id[:12]}: {exc}") from exc

    def list_mine(self) -> list[str]:
        """Ids of every container labelled with this manager's instance name, running or not."""
        return [str(c["Id"]) for c in self._instance_containers()]

    def list_orphans(self) -> list[str]:
        """This instance's containers whose manager process is gone (crashed or killed). Containers of a live
        manager with the same instance name on this host (an API server and a CLI run, say) are left alone, and
        so are those of managers on other hosts, whose liveness cannot be seen from here."""
        orphans = []
        for container in self._instance_containers():
            owner = (container.get("Labels") or {}).get(OWNER_LABEL, "")
            if owner_alive(owner) is False:
                orphans.append(str(container["Id"]))
        return orphans

    def _instance_containers(self) -> list[dict[str, Any]]:
        label = f"{INSTANCE_LABEL}={self.settings.instance}"
        found: list[dict[str, Any]] = self.client.api.containers(all=True, filters={"label": label})  # no inspect
        return found
