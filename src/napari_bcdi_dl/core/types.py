"""Small dataclasses that travel with the arrays: geometry, loaded data, reconstructions.

Arrays are (z, y, x) = (rocking / axis 0, detector rows, detector columns). Lengths in the dataclasses are
in the unit their field name says (``_kev``, ``_m``, ``_deg``, ``_nm``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Geometry:
    """Experiment geometry of a scan, as far as it is known (every field may be None).

    Attributes
    ----------
    energy_kev : X-ray energy in keV.
    distance_m : sample-detector distance in m.
    pixel_size_m : detector pixel size (rows, cols) in m.
    rocking_step_deg : angular step of the rocking curve in degrees.
    rocking_motor : name of the rocking motor (``"eta"`` or ``"phi"`` at ID01).
    beam_center : direct-beam position (row, col) in detector pixels.
    angles_deg : diffractometer positions in degrees (``eta``, ``phi``, ``delta``, ``nu``...); a motor that
        moves during the scan is stored as its mean, with its step in ``rocking_step_deg``.
    roi : detector region of interest (row0, row1, col0, col1) the data were cropped to, if any.
    hkl : Bragg reflection.
    lattice_nm : cubic lattice parameter in nm.
    detector : detector name (``"mpx1x4"``, ``"eiger2M"``...).
    """

    energy_kev: float | None = None
    distance_m: float | None = None
    pixel_size_m: tuple[float, float] | None = None
    rocking_step_deg: float | None = None
    rocking_motor: str | None = None
    beam_center: tuple[float, float] | None = None
    angles_deg: dict[str, float] = field(default_factory=dict)
    roi: tuple[int, int, int, int] | None = None
    hkl: tuple[int, int, int] | None = None
    lattice_nm: float | None = None
    detector: str | None = None

    @property
    def wavelength_nm(self) -> float | None:
        """Wavelength in nm from the energy (λ[nm] = 1.23984198 / E[keV])."""
        return None if self.energy_kev is None else 1.23984198 / float(self.energy_kev)

    def is_complete_for_voxel_size(self) -> bool:
        """True when energy, distance, pixel size and rocking step are all known."""
        return None not in (self.energy_kev, self.distance_m, self.pixel_size_m, self.rocking_step_deg)


@dataclass
class LoadedData:
    """What a reader returns.

    Attributes
    ----------
    data : the 3D array: float32 intensity (``kind == "intensity"``) or complex64 object
        (``kind == "object"``). Readers never copy more than needed; callers must not modify it in place.
    kind : ``"intensity"`` (a diffraction pattern) or ``"object"`` (a reconstruction).
    mask : uint8 gap/invalid mask (1 = invalid) for intensity, or None.
    support : uint8 support (1 = inside the crystal) for objects, or None.
    geometry : what is known of the experiment.
    source : the file it came from.
    meta : anything else worth keeping (scan number, LLK of a result, program that wrote it...).
    """

    data: np.ndarray
    kind: str = "intensity"
    mask: np.ndarray | None = None
    support: np.ndarray | None = None
    geometry: Geometry = field(default_factory=Geometry)
    source: Path | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class Reconstruction:
    """A phasing result: object, support and how well it fits the data.

    Attributes
    ----------
    obj : complex64 object, same shape as the data, centred.
    support : uint8 support, same shape.
    llk : Poisson log-likelihood (normalised as PyNX does) at the end, or None.
    llk_free : the same on the free voxels, or None.
    method : ``"conventional"``, ``"dl"``, ``"dl-unrefined"``, ``"pynx"``...
    history : per-iteration records (``{"iteration", "llk", "llk_free", "support_size"}``).
    meta : recipe, seed, run index, timing...
    """

    obj: np.ndarray
    support: np.ndarray
    llk: float | None = None
    llk_free: float | None = None
    method: str = "conventional"
    history: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)


@dataclass
class ReconstructionResult:
    """A reconstruction with what is known around it: the one result type the docks attach to their layers
    (``metadata["bcdi"]["result"]``) and read back (``widgets._layers.result_of``), and the pipeline writes.

    Attributes
    ----------
    reconstruction : the phasing result (object, support, LLK, free LLK, method, history, meta).
    geometry : the experiment geometry of the data it was phased from, or None.
    voxel_size_nm : real-space voxel size (z, y, x) in nm, or None (voxel units).
    data_name : the data it was phased from (a layer name or a file).
    source : the file it was read from, when it was read (never written over), else None.
    strain : its post-processing (``core.postprocess.StrainResult``), when done.
    config : the resolved pipeline configuration that made it (``pipeline.steps``), when known.
    provenance : the provenance block (inputs, versions, timings), when known.
    """

    reconstruction: Reconstruction
    geometry: Geometry | None = None
    voxel_size_nm: tuple | None = None
    data_name: str | None = None
    source: str | None = None
    strain: object | None = None
    config: dict | None = None
    provenance: dict | None = None

    @property
    def obj(self) -> np.ndarray:
        return self.reconstruction.obj

    @property
    def support(self) -> np.ndarray:
        return self.reconstruction.support

    @property
    def llk(self) -> float | None:
        return self.reconstruction.llk

    @property
    def llk_free(self) -> float | None:
        return self.reconstruction.llk_free

    @property
    def method(self) -> str:
        return self.reconstruction.method

    @property
    def recipe(self) -> str | None:
        return self.reconstruction.meta.get("recipe")
