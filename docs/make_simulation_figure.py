"""Make docs/img/simulation_samples.png: a few simulated samples (object and diffraction slices).

Rows: one simulated crystal each (shape, field, phase range, oversampling in the row label). Columns: the
modulus and the phase (radians, outside the support blank) of the object through its centre, then
log10(1 + I) through the peak centre (rocking-curve centre plane): the measured-like counts with the gap
(if any), then the noise-free expected intensity that inpainting and scoring are measured against.

Usage: ``.venv/bin/python docs/make_simulation_figure.py`` (needs matplotlib, not a package dependency).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_bcdi_dl.core.simulate import simulate_pattern  # noqa: E402

CASES = [
    dict(
        shape="wulff", field="gaussian_bumps", phase_range=2 * np.pi, oversampling=(3, 3, 3), max_counts=1e6
    ),
    dict(
        shape="winterbottom",
        field="interface",
        phase_range=4 * np.pi,
        oversampling=(2.5, 3.5, 3),
        max_counts=1e7,
        gap="cross:6",
    ),
    dict(shape="hull", field="screw", phase_range=4 * np.pi, oversampling=(3, 2.5, 2.5), max_counts=1e5),
    dict(
        shape="cube_cuts",
        field="random",
        phase_range=5 * np.pi,
        oversampling=(4, 3, 2.5),
        max_counts=1e8,
        density_noise=0.08,
        gap="line:9",
    ),
]


def main() -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = 64
    c = size // 2
    fig, axes = plt.subplots(len(CASES), 4, figsize=(11, 2.9 * len(CASES)), constrained_layout=True)
    for row, case in enumerate(CASES):
        p = simulate_pattern(size, seed=row + 1, **case)
        mod = np.abs(p.obj)
        phase = np.where(p.support == 1, p.phase_field, np.nan)
        logi = np.log10(1 + p.intensity)
        zoom = slice(c - 16, c + 16)
        a = axes[row]
        im = a[0].imshow(mod[c, zoom, zoom] / mod.max(), cmap="gray", vmin=0, vmax=1)
        fig.colorbar(im, ax=a[0], shrink=0.8)
        a[0].set_title("modulus, z = centre", fontsize=9)
        r = case["phase_range"] / 2
        im = a[1].imshow(phase[c, zoom, zoom], cmap="twilight", vmin=-r, vmax=r)
        fig.colorbar(im, ax=a[1], shrink=0.8, label="rad")
        a[1].set_title(f"phase (range {case['phase_range'] / np.pi:.0f}π)", fontsize=9)
        vmax = np.log10(1 + case["max_counts"])
        im = a[2].imshow(logi[c], cmap="inferno", vmin=0, vmax=vmax)
        a[2].set_title("counts, log10(1+I), (y, x)", fontsize=9)
        im = a[3].imshow(np.log10(1 + p.expected[c]), cmap="inferno", vmin=0, vmax=vmax)
        fig.colorbar(im, ax=a[3], shrink=0.8, label="log10 counts")
        a[3].set_title("noise-free, no gap, (y, x)", fontsize=9)
        gap = p.params["gap"]
        label = (
            f"{p.params['shape']}\n{p.params['field']}\n"
            f"os {tuple(round(o, 1) for o in case['oversampling'])}\n"
            f"max {case['max_counts']:.0e}" + ("" if gap is None else f"\n{gap['kind']} gap")
        )
        a[0].set_ylabel(label, fontsize=9)
        for ax in a:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Simulated strained crystals (64³, seeds 1–4): object (left) and noisy Bragg peak (right)")
    out = ROOT / "docs" / "img" / "simulation_samples.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=90)
    return out


if __name__ == "__main__":
    print(main())
