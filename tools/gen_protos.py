"""Generate the Python code of protos/: the one entry the Makefile and the Dockerfile both run."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

PROTOS = Path(__file__).resolve().parents[1] / "protos"


def googleapis_root() -> Path:
    """The site-packages folder that holds googleapis-common-protos' google/api/*.proto (HTTP annotations)."""
    spec = importlib.util.find_spec("google.api.annotations_pb2")
    if spec is None or spec.origin is None:
        raise SystemExit("googleapis-common-protos is not installed: install the locked dependencies first")
    return Path(spec.origin).resolve().parents[2]


def protoc_args(out: Path, *, stubs: bool) -> list[str]:
    well_known = Path(str(resources.files("grpc_tools") / "_proto"))
    outputs = [f"--python_out={out}", f"--grpc_python_out={out}"]
    if stubs:
        outputs += [f"--mypy_out={out}", f"--mypy_grpc_out={out}"]
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    return ["protoc", f"-I{PROTOS}", f"-I{googleapis_root()}", f"-I{well_known}", *outputs, *sources]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder to write the `toefl` package into")
    parser.add_argument("--stubs", action="store_true", help="also write .pyi stubs (mypy-protobuf) for mypy")
    args = parser.parse_args(argv)
    if args.stubs:
        # protoc finds mypy-protobuf's plugins (protoc-gen-mypy, protoc-gen-mypy_grpc) on PATH, beside python.
        os.environ["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))
    args.out.mkdir(parents=True, exist_ok=True)
    return int(protoc.main(protoc_args(args.out, stubs=args.stubs)))


if __name__ == "__main__":
    sys.exit(main())
