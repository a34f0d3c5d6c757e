"""Simulated strained BCDI patterns with their ground truth: shapes, phase fields, diffraction, datasets.

Public API::

    simulate_pattern(size=64, *, seed=0, shape="wulff", field="gaussian_bumps", phase_range=3*np.pi,
                     oversampling=(3, 3, 3), max_counts=1e6, noise=True, gap=None, ...) -> SimulatedPattern
    strained_particle_with_gap(seed=0) -> SimulatedPattern          # the 128³ napari sample
    generate_dataset(kind, outdir, n, size, seed, ...)              # sharded HDF5 training sets
    iter_shards(outdir), load_dataset(outdir)

See ``docs/simulation.md`` for every parameter, its range and why.
"""

from .aliens import AlienPattern, inject_aliens
from .datasets import (
    DATASET_KINDS,
    draw_inpaint_sample,
    draw_phase_sample,
    generate_dataset,
    iter_shards,
    load_dataset,
    read_manifest,
)
from .diffraction import (
    GapSpec,
    SimulatedPattern,
    far_field,
    gap_mask,
    intensity_of,
    parse_gap,
    random_gap,
    simulate_pattern,
)
from .fields import FIELDS
from .sample import strained_particle_with_gap
from .shapes import SHAPES, Polyhedron

__all__ = [
    "DATASET_KINDS",
    "FIELDS",
    "SHAPES",
    "AlienPattern",
    "GapSpec",
    "Polyhedron",
    "SimulatedPattern",
    "draw_inpaint_sample",
    "draw_phase_sample",
    "far_field",
    "gap_mask",
    "generate_dataset",
    "inject_aliens",
    "intensity_of",
    "iter_shards",
    "load_dataset",
    "parse_gap",
    "random_gap",
    "read_manifest",
    "simulate_pattern",
    "strained_particle_with_gap",
]
