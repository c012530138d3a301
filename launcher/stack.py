"""item_service, session_service and the gateway, each a real child process on 127.0.0.1 port 0."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from launcher.gateway import GatewayProcess
from launcher.procs import ServiceProcess, item_service_process, session_service_process


@dataclass
class Stack:
    """The whole platform on one item bank; the user database lives in `workdir`.

    session_service gets a new port when restarted; `restart_session` therefore restarts the gateway too,
    pointed at the new address (binding a fixed port again would race with other processes for it).
    """

    workdir: Path
    bank: Path
    token_key: str
    session_env: Mapping[str, str] = field(default_factory=dict)
    gateway_log_level: str = "WARNING"
    item: ServiceProcess | None = None
    session: ServiceProcess | None = None
    gateway: GatewayProcess | None = None

    @property
    def user_db(self) -> Path:
        return self.workdir / "sessions" / "user_data.db"

    def start(self) -> Stack:
        self.item = item_service_process(self.workdir / "items", bank=self.bank, token_key=self.token_key).start()
        self.session = session_service_process(
            self.user_db.parent, item_address=self.item.address, token_key=self.token_key, env=self.session_env
        ).start()
        self.start_gateway()
        return self

    def start_gateway(self) -> None:
        assert self.item is not None and self.session is not None
        self.gateway = GatewayProcess(
            workdir=self.workdir / "gateway",
            item_address=self.item.address,
            session_address=self.session.address,
            token_key=self.token_key,
            log_level=self.gateway_log_level,
        ).start()

    def restart_session(self) -> None:
        """SIGKILL session_service (if alive), start it on the same database, and re-point the gateway."""
        assert self.session is not None and self.gateway is not None
        self.session.restart()
        self.gateway.terminate()
        self.start_gateway()

    def pids(self) -> dict[str, int]:
        procs = {"item_service": self.item, "session_service": self.session, "gateway": self.gateway}
        return {name: p.proc.pid for name, p in procs.items() if p is not None and p.proc is not None}

    def stop(self) -> None:
        for proc in (self.gateway, self.session, self.item):
            if proc is not None:
                proc.terminate()
