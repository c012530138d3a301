"""Container health check: exit 0 when a gRPC service reports SERVING (or an HTTP URL answers 200)."""

from __future__ import annotations

import argparse
import sys
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def grpc_serving(address: str, timeout: float) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="healthprobe", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--grpc", metavar="HOST:PORT", help="gRPC health Check against this address")
    group.add_argument("--http", metavar="URL", help="HTTP GET that must answer 200")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    ok = grpc_serving(args.grpc, args.timeout) if args.grpc else http_ok(args.http, args.timeout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
