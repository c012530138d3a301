"""The client's address behind trusted proxies: X-Forwarded-For believed from them only, read from the right."""

from __future__ import annotations

import pytest

from gateway.forwarding import client_address, parse_trusted_proxies
from toefl_core.config import ConfigError

PROXIES = parse_trusted_proxies("10.0.0.0/8, 192.0.2.7, 2001:db8::/32")


def test_no_trusted_proxy_means_the_peer_is_the_client() -> None:
    assert client_address("203.0.113.5", ["198.51.100.1"], ()) == "203.0.113.5"


def test_a_trusted_proxys_forwarded_address_is_the_client() -> None:
    assert client_address("10.1.2.3", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    assert client_address("2001:db8::1", ["2001:db9::5"], PROXIES) == "2001:db9::5"


def test_only_the_hops_the_trusted_proxies_added_are_read() -> None:
    # The client wrote "1.2.3.4" itself; the trusted proxies appended what they saw, right to left.
    assert client_address("10.0.0.1", ["1.2.3.4, 198.51.100.1", "192.0.2.7"], PROXIES) == "198.51.100.1"
    # A client talking to the gateway directly cannot pick its address.
    assert client_address("203.0.113.5", ["1.2.3.4"], PROXIES) == "203.0.113.5"


def test_a_hop_that_is_not_an_address_stops_the_walk_at_the_proxy() -> None:
    assert client_address("10.0.0.1", ["unknown"], PROXIES) == "10.0.0.1"
    assert client_address("10.0.0.1", [], PROXIES) == "10.0.0.1"


def test_the_setting_names_what_it_cannot_read() -> None:
    assert parse_trusted_proxies("") == ()
    with pytest.raises(ConfigError, match=r"'proxy\.example'"):
        parse_trusted_proxies("10.0.0.0/8, proxy.example")
