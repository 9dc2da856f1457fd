"""Generates the Python modules of protos/*.proto with grpcio-tools (into a cache directory)
and puts them on sys.path, so the examples need no generated files checked in. In your own
project, run `python -m grpc_tools.protoc` once as part of the build instead."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(tempfile.gettempdir(), "swiftgrpc-examples-generated")
os.makedirs(OUT, exist_ok=True)
for proto in ("helloworld.proto", "route_guide.proto"):
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE}/protos",
                    f"--python_out={OUT}", f"--grpc_python_out={OUT}", proto], check=True)
sys.path.insert(0, OUT)
# In a source checkout, use the binding from bindings/python (pip-installed copies win).
try:
    import swiftgrpc  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bindings", "python"))
