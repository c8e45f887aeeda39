"""Builds the native libraries with CMake + Ninja and ships them as package data.

The libraries use no Python C-API (they are loaded with torch.ops.load_library) and only torch's stable
ABI, so the wheel is tagged py3-none-<platform>: one wheel for every Python 3 and every torch >= 2.10.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # setuptools >= 70 ships its own
    from setuptools.command.bdist_wheel import bdist_wheel

ROOT = Path(__file__).resolve().parent
LIBRARIES = ["liblowbit_cpu.so"]
# Built only when the SYCL runtime (pip install lowbit[sycl]'s wheels) is in the build environment.
OPTIONAL_LIBRARIES = ["liblowbit_sycl.so"]


def _install_library(src: Path, dst: Path) -> None:
    # copy, then rename over the old file: a process that has the old library mapped keeps its inode intact
    # (copying in place would rewrite the pages under it and crash it)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)


class CMakeBuild(build_ext):
    def run(self):
        # setuptools' build_ext.run() clears self.inplace while it builds (and copies only the extension's own
        # file back afterwards): remember what was asked for
        self._develop = bool(self.inplace or getattr(self, "editable_mode", False))
        super().run()

    def build_extension(self, ext):
        import torch.utils.cpp_extension as cpp

        # LOWBIT_EMULATED_ISAS=1 (make test) adds the SIMDe-emulated twins of the AVX-512 variants, for tests on
        # any machine; a wheel never holds them, and builds in its own directory so the two never thrash.
        develop = getattr(self, "_develop", False)
        emulated = develop and os.environ.get("LOWBIT_EMULATED_ISAS") == "1"
        build_dir = ROOT / "build" / ("cmake" if develop else "cmake-wheel")
        out_dir = build_dir / "lib"
        cmake_args = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DTORCH_INCLUDE_DIRS={';'.join(cpp.include_paths())}",
            f"-DTORCH_LIBRARY_DIR={cpp.library_paths()[0]}",
            f"-DLOWBIT_OUTPUT_DIR={out_dir}",
            f"-DLOWBIT_SYCL_PREFIX={sys.prefix}",
            f"-DLOWBIT_EMULATED_ISAS={'ON' if emulated else 'OFF'}",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ]
        subprocess.check_call(cmake_args)
        subprocess.check_call(["cmake", "--build", str(build_dir), "--parallel", str(os.cpu_count() or 2)])
        dests = [Path(self.get_ext_fullpath(ext.name)).parent]
        if develop:
            # an editable install copies back only the extension's own file: put the others in place here
            dests.append(ROOT / "python" / "lowbit")
        for dest in dests:
            dest.mkdir(parents=True, exist_ok=True)
            for name in LIBRARIES:
                _install_library(out_dir / name, dest / name)
            for name in OPTIONAL_LIBRARIES:
                if (out_dir / name).exists():
                    _install_library(out_dir / name, dest / name)
                elif (dest / name).exists():
                    (dest / name).unlink()

    def get_ext_filename(self, ext_name):
        # a plain library name, not lowbit/_C.cpython-311-x86_64-linux-gnu.so: nothing here is a Python module
        return os.path.join(*ext_name.split(".")[:-1], LIBRARIES[0])


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(
    ext_modules=[Extension("lowbit._native", sources=[])],
    cmdclass={"build_ext": CMakeBuild, "bdist_wheel": PlatformWheel},
)
