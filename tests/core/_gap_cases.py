"""Gap masks and patterns shared by the gap tests (test_gaps.py, test_gap_fill.py)."""

from __future__ import annotations

import numpy as np

N = 64


def plane(shape, axis, start, stop, **restrict):
    m = np.zeros(shape, np.uint8)
    sl = [slice(None)] * 3
    sl[axis] = slice(start, stop)
    for ax, (a, b) in restrict.items():
        sl[int(ax[1:])] = slice(a, b)
    m[tuple(sl)] = 1
    return m


def cross(shape=(N, N, N), rows=(29, 35), cols=(30, 36)):
    return plane(shape, 1, *rows) | plane(shape, 2, *cols)


def sinc_pattern(n=N, seed=0, counts=1e6):
    """|FT|² of a sheared box with a smooth phase: fringes on every axis, Poisson noise (fixed seed)."""
    z, y, x = np.meshgrid(*[np.arange(n) - n // 2] * 3, indexing="ij")
    obj = (np.abs(z + 0.3 * y) < 8) & (np.abs(y) < 6) & (np.abs(x - 0.2 * z) < 9)
    obj = obj * np.exp(1j * 0.6 * np.sin(2 * np.pi * (x + y) / 24.0))
    i = np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))) ** 2
    rng = np.random.default_rng(seed)
    return rng.poisson(i / i.max() * counts).astype(np.float32)


def gaussian(n=N):
    z, y, x = np.meshgrid(*[np.arange(n) - n // 2] * 3, indexing="ij")
    return (1e5 * np.exp(-(x**2 / 60.0 + y**2 / 40.0 + z**2 / 80.0))).astype(np.float32)
