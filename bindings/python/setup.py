"""Build step of the liballoc wheel: the native libraries come from the
project's own Makefile.

Why a setuptools step that runs make (and not maturin, or cargo called from
here): liballoc.so is not a plain cargo artifact. The Makefile links the
Rust static library with the project's C helpers under a version script
(liballoc.map), and its file names (liballoc.so, liballoc.a) stay fixed
whatever the Cargo library target is called. `make python-native` builds
that library and liballoc/_la_numpy.so (numpy's memory handler, a small
CPython-free C file: native/numpy_handler.c), and this step copies both
into the package. The binding itself is ctypes, so there is no CPython
extension: the wheel is tagged py3-none-<platform> (any Python 3, this
platform only).

The source must sit in a liballoc checkout (bindings/python); pip builds it
in place. MAKE overrides the make program.
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NATIVE = {
    # file in the package: file built by the Makefile (symlinks followed)
    "liballoc.so": ROOT / "build" / "liballoc.so",
    "_la_numpy.so": ROOT / "build" / "python" / "_la_numpy.so",
}


class build_native(build_py):  # noqa: N801 - setuptools command name
    """build_py, then `make python-native` and the libraries copied in."""

    def run(self):
        super().run()
        if not (ROOT / "Makefile").is_file() or not (ROOT / "include" / "liballoc.h").is_file():
            raise SystemExit(
                f"liballoc: {HERE} is not inside a liballoc checkout; build the "
                "wheel from the repository (pip install ./bindings/python)"
            )
        make = os.environ.get("MAKE", "make")
        subprocess.run([make, "-C", str(ROOT), "python-native"], check=True)
        dest = Path(self.build_lib) / "liballoc"
        dest.mkdir(parents=True, exist_ok=True)
        for name, built in NATIVE.items():
            shutil.copyfile(built, dest / name)
            os.chmod(dest / name, 0o755)


class BinaryDistribution(Distribution):
    """The package carries native code: platlib, and a platform wheel."""

    def has_ext_modules(self):
        return True


class bdist_wheel_py3(bdist_wheel):  # noqa: N801
    """No CPython ABI is used (ctypes), so any Python 3 on this platform."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(
    distclass=BinaryDistribution,
    cmdclass={"build_py": build_native, "bdist_wheel": bdist_wheel_py3},
)
