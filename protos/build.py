"""Regenerate the Python code of protos/ with grpcio-tools: `python -m protos.build`.

The generated modules are committed, so a fresh clone imports them without this step.
"""
from __future__ import annotations

import pathlib
import re
import sys

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent


def main() -> int:
    sources = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("gochat/v1/*.proto"))
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        ["grpc_tools.protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={ROOT}", f"--pyi_out={ROOT}",
         f"--grpc_python_out={ROOT}", *sources]
    )
    if code != 0:
        return code
    # protoc writes absolute imports (`from gochat.v1 import x`); make them package-relative
    # so the code imports as protos.gochat.v1.*.
    for generated in ROOT.glob("gochat/v1/*_pb2*.py"):
        text = generated.read_text()
        fixed = re.sub(r"^from gochat\.v1 import", "from protos.gochat.v1 import", text, flags=re.M)
        generated.write_text(fixed)
    for pkg in (ROOT / "gochat", ROOT / "gochat" / "v1"):
        (pkg / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
