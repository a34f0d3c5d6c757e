#!/usr/bin/env bash
# Fill wheels/gpu/ (git-ignored) with the Python wheels the GPU machine lacks for scripts/gpu_train_phase.sh:
# Keras (by default the version installed here, so that what is written there loads here) and its small
# dependencies, and pytest with its own, for CPython 3.12 on manylinux x86_64. About 6 MB; the machine already
# has numpy, h5py, ml-dtypes, JAX, torch and CuPy (docs/gpu-training.md; /work/.library/device/KINDS.md).
#
#   scripts/gpu_fetch_wheels.sh            # KERAS_VERSION=3.x.y to choose another Keras, PYTHON=... for pip
#
# Wheels only (--only-binary), no dependency resolution (--no-deps): the list below is the whole set, one
# version of each. The install there (pip install --no-index --find-links wheels/gpu keras pytest) takes
# from it only what the machine's own packages do not already satisfy.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
dest=wheels/gpu
keras_version=${KERAS_VERSION:-$("$PY" -c 'from importlib.metadata import version; print(version("keras"))')}
rm -rf "$dest"
mkdir -p "$dest"
"$PY" -m pip download --disable-pip-version-check --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest" \
    "keras==$keras_version" namex optree absl-py rich markdown-it-py mdurl pygments typing-extensions \
    packaging pytest pluggy iniconfig
ls -l "$dest"
du -sh "$dest"
