"""The client's address: the peer's, or the one X-Forwarded-For gives when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from toefl_core.config import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(raw: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDRs (`10.0.0.0/8, 192.0.2.7`); empty: no proxy is trusted."""
    networks: list[Network] = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ConfigError(f"GATEWAY_TRUSTED_PROXIES: {entry!r} is not an address or a CIDR") from exc
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """Walk X-Forwarded-For from the right while each hop is a trusted proxy: the first address that is not one
    is the client as the last trusted proxy saw it. Entries further left are the client's own say and are never
    read, so a client cannot pick the address that sign-in throttling counts it by."""
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    current = peer
    while hops:
        address = _address(current)
        if address is None or not any(address in network for network in trusted):
            break
        candidate = hops.pop()
        if _address(candidate) is None:
            # Not an address (a proxy's "unknown", garbage): the proxy that wrote it is as far as we can see.
            break
        current = candidate
    return current
