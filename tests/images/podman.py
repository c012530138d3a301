"""Podman as the container engine of the images test: its environment, a compose project, and container facts.

Everything goes through deploy/podman/env.sh (containers.conf, the Docker-API socket Debian's docker-compose
talks to, health checks without systemd) and docker-compose, as a person following the README would.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from launcher.procs import REPO_ROOT

TOOLS = ("podman", "runc", "debootstrap", "docker-compose", "iptables")
# The Debian packages that bring them (and podman's network stack); .ci/run installs them.
PACKAGES = "podman runc iptables debootstrap docker-compose netavark aardvark-dns"
# Named in docker-compose.yml: the same volumes whatever the project name, so the test refuses to start when
# they exist already (someone's stack) rather than reuse or remove them.
VOLUMES = ("toefl_db_data", "toefl_pg_data")
SERVICES = ("item_service", "session_service", "gateway")
LOCAL_CA_STORE = Path("/usr/local/share/ca-certificates")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def run(
    args: Sequence[str], env: dict[str, str], *, timeout: float, cwd: Path = REPO_ROOT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Engine:
    """deploy/podman/env.sh's podman, with its state (config, socket, pid files) in a folder of this test."""

    state: Path
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> Engine:
        self.env = {**os.environ, "TOEFL_PODMAN_STATE": str(self.state)}
        out = run([str(REPO_ROOT / "deploy/podman/env.sh")], self.env, timeout=60).stdout
        for line in out.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            self.env[name] = value
        assert {"CONTAINERS_CONF", "DOCKER_HOST"} <= set(self.env), out
        return self

    def stop(self) -> None:
        run([str(REPO_ROOT / "deploy/podman/env.sh"), "--stop"], self.env, timeout=60, check=False)

    def podman(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return run(["podman", *args], self.env, timeout=timeout, check=check).stdout.strip()

    def image_ids(self) -> set[str]:
        return set(self.podman("images", "--all", "--quiet", "--no-trunc").split())

    def image_size(self, ref: str) -> int:
        return int(self.podman("image", "inspect", "--format", "{{.Size}}", ref))


def extra_ca_certs() -> str:
    """The CA certificates of this host's local store (where a TLS-intercepting proxy's CA is installed)."""
    if os.environ.get("EXTRA_CA_CERTS"):
        return os.environ["EXTRA_CA_CERTS"]
    if not LOCAL_CA_STORE.is_dir():
        return ""
    return "\n".join(path.read_text() for path in sorted(LOCAL_CA_STORE.rglob("*.crt")))


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def build_context(target: Path) -> Path:
    """The work tree's files (tracked and new, as they are now) and the built bank, copied to `target`.

    The test changes the bank there, never in the work tree. `make deploy` runs there too: the venv and the
    generated code are links to the work tree's, and modification times are kept so make rebuilds neither.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in [*filter(None, listed.split("\0")), "item_service/item_bank.db"]:
        source = REPO_ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for link in (".venv", "gen"):
        (target / link).symlink_to(REPO_ROOT / link)
    return target


@dataclass
class Project:
    """One docker-compose project over the build context, its variables in `env` (on top of the engine's)."""

    engine: Engine
    context: Path
    name: str
    variables: dict[str, str]
    profiles: tuple[str, ...] = ()

    @property
    def env(self) -> dict[str, str]:
        return {**self.engine.env, **self.variables}

    @property
    def compose_command(self) -> list[str]:
        profiles = [arg for profile in self.profiles for arg in ("--profile", profile)]
        return ["docker-compose", "-p", self.name, *profiles]

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.compose_command, *args], self.env, timeout=timeout, cwd=self.context, check=check)

    def container_id(self, service: str) -> str:
        found = self.compose("ps", "-q", service, timeout=60).stdout.split()
        assert len(found) == 1, f"{service}: containers {found}"
        return found[0]

    def health(self, container: str) -> str:
        return self.engine.podman(
            "inspect", "--format", "{{.State.Status}}/{{.State.Health.Status}}", container, check=False
        )

    def dump_stacks(self, services: Sequence[str]) -> None:
        """Each service writes every thread's stack to its log (toefl_core.server's SIGUSR1): where a hang is."""
        for service in services:
            self.compose("kill", "-s", "SIGUSR1", service, timeout=60, check=False)
        time.sleep(1)

    def logs(self, tail: int = 200, *services: str) -> str:
        """The last lines each container of the stack (or of `services`) wrote: what a failed run needs."""
        return self.compose("logs", "--no-color", "--tail", str(tail), *services, timeout=60, check=False).stdout

    def log_lines(self, containing: str, *services: str, tail: int = 5000) -> list[str]:
        """The stack's log lines (or its `services`') that contain `containing`, oldest first."""
        return [line for line in self.logs(tail, *services).splitlines() if containing in line]

    def explain_failure(self, services: Sequence[str]) -> str:
        """Every service's stacks and last lines, then its warnings and errors: CI shows the end of the output."""
        self.dump_stacks(services)
        # Each distinct warning once, with how often it came: a check repeated every 2 s would hide the rest.
        seen: Counter[str] = Counter()
        last: dict[str, str] = {}
        logs = self.logs(5000).splitlines()
        for line in (line for level in (" WARNING ", " ERROR ") for line in logs if level in line):
            service, _, rest = line.partition("|")
            message = service.strip() + " " + rest.split(" ", 3)[-1]
            seen[message] += 1
            last[message] = line
        problems = [f"{last[message]}  (x{count})" for message, count in seen.items()]
        return f"{self.logs()}\nwarnings and errors of the stack:\n" + "\n".join(problems[-60:])

    def wait_healthy(self, services: Sequence[str], timeout: float = 180) -> float:
        """Seconds until each service's container is running and healthy; fails with the logs after `timeout`."""
        started = time.monotonic()
        while True:
            states = {service: self.health(self.container_id(service)) for service in services}
            if all(state == "running/healthy" for state in states.values()):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"not healthy after {timeout} s: {states}\n{self.logs(30)}")
            time.sleep(1)
