"""Builds the swiftgrpc wheel with libswiftgrpc.so inside it. The library is taken from
SWIFTGRPC_LIBRARY, else from the source tree's build/ (CMake) or .build/release/ (SwiftPM):
build the library first (see the repository README)."""
import os
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def find_library() -> str:
    candidates = [os.environ.get("SWIFTGRPC_LIBRARY", ""),
                  os.path.join(ROOT, "build", "libswiftgrpc.so"),
                  os.path.join(ROOT, ".build", "release", "libswiftgrpc.so")]
    for c in candidates:
        if c and os.path.exists(c):
            return c
    raise SystemExit("libswiftgrpc.so not found: build it first (cmake -S . -B build && "
                     "cmake --build build) or set SWIFTGRPC_LIBRARY")


class BuildPyWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        target = os.path.join(self.build_lib, "swiftgrpc", "libswiftgrpc.so")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(find_library(), target)


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:  # a platform wheel: it carries a native library
        return True


try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools before 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]


class OneWheelForEveryPython(bdist_wheel):
    """py3-none-<platform>: the wheel holds no extension module (the library is loaded with
    ctypes), so one file serves every CPython 3 and PyPy 3 on that platform."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": OneWheelForEveryPython},
      distclass=BinaryDistribution)
