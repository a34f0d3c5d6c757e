"""The one compiled part of the package; everything else is declared in pyproject.toml.

``core/phasing/_kernels.c`` holds the fused element-wise loops of the phasing engine (plain C, no numpy
headers). The extension is optional: without a C compiler the package still installs, and the engine runs
the same steps as blocked numpy ufuncs (``core/phasing/_fused.py``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "napari_bcdi_dl.core.phasing._kernels",
            sources=["src/napari_bcdi_dl/core/phasing/_kernels.c"],
            # vectorising sqrtf and the division needs both (no errno, no FP traps: neither is used)
            extra_compile_args=["-O3", "-fno-math-errno", "-fno-trapping-math"],
            optional=True,
        )
    ]
)
