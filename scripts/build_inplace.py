"""Developer tool: compile the Cython twins in place (src/fastredis/*.so).

Usage: python scripts/build_inplace.py [module ...]   e.g. _resp_c _window_c
With PYTHONPATH=src (or a .pth file) tests then import the compiled twins
without reinstalling. `cython -a` annotation HTML is written beside each .pyx.
Only for development: wheels are built by scikit-build-core (CMakeLists.txt).
"""

import glob
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension
from setuptools.dist import Distribution

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")


def main(names):
    pyx = sorted(glob.glob(os.path.join(SRC, "fastredis", "_*_c.pyx")))
    if names:
        pyx = [p for p in pyx if os.path.basename(p)[:-4] in names]
    exts = [
        Extension("fastredis." + os.path.basename(p)[:-4], [p], extra_compile_args=["-O2"])
        for p in pyx
    ]
    os.chdir(SRC)
    dist = Distribution({"ext_modules": cythonize(exts, language_level=3, annotate=True, quiet=True)})
    cmd = dist.get_command_obj("build_ext")
    cmd.inplace = True
    cmd.build_temp = os.path.join(ROOT, "build", "inplace-tmp")
    cmd.ensure_finalized()
    cmd.run()


if __name__ == "__main__":
    main(sys.argv[1:])
