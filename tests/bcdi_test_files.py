"""Real BCDI files for the I/O tests, laid out as the programs that make them write them.

- PyNX CXI data and result files: the groups, links and attributes of ``pynx.cdi.save_cdi_data_cxi`` and
  ``CDI.save_obj_cxi`` (gzip + shuffle, energy in J, ``data_1/data`` soft links, ``entry_last``).
- ESRF ID01 BLISS: a dataset file ``<sample>_<dataset>.h5`` with scans ``N.1`` whose
  ``measurement/<detector>`` links to ``instrument/<detector>/data``, a virtual dataset over the LIMA file
  ``scanNNNN/<detector>_0000.h5`` (``/entry_0000/measurement/data``, bitshuffle-LZ4 compressed); or an
  external link to the LIMA file; or the frames stored directly.
- EDF frames written by fabio, TIFF frames and stacks written by tifffile.

Also the hostile corpus: every bad input the readers must refuse with one clear line.
Imported by tests/core/io, tests/cli and tests/gui (``tests/`` is on ``sys.path`` under pytest).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

J_PER_KEV = 1.602176634e-16


def pattern(shape=(16, 24, 20), seed=0, peak=5e4, dtype=np.uint32) -> np.ndarray:
    """Poisson counts of a Gaussian Bragg peak in the middle of the array (integer dtype, as detectors)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    r2 = sum((g / (n / 5)) ** 2 for g, n in zip(grids, shape))
    lam = peak * np.exp(-r2) + 0.2
    return rng.poisson(lam).astype(dtype)


def with_gap(data: np.ndarray, rows=(10, 12)) -> np.ndarray:
    """A copy with detector rows ``rows[0]:rows[1]`` dead in every frame (a module gap)."""
    out = data.copy()
    out[:, rows[0] : rows[1], :] = 0
    return out


def complex_object(shape=(16, 24, 20), seed=1) -> tuple[np.ndarray, np.ndarray]:
    """A centred complex64 object (ellipsoid with a phase field) and its uint8 support."""
    grids = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    r2 = sum((g / (n / 4)) ** 2 for g, n in zip(grids, shape))
    support = (r2 <= 1).astype(np.uint8)
    phase = 1.5 * np.sin(grids[0] / 3) * np.cos(grids[2] / 4)
    obj = (support * np.exp(1j * phase)).astype(np.complex64)
    return obj, support


# ------------------------------------------------------------------------------------------------ PyNX CXI
def pynx_data_cxi(
    path: Path, iobs: np.ndarray, mask=None, *, wavelength_m=1.3776e-10, distance_m=0.83, pixel_m=55e-6
) -> Path:
    """A CXI data file as ``pynx.cdi.save_cdi_data_cxi`` writes it."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["file_name"] = str(path)
        f.attrs["creator"] = "PyNX"
        f.attrs["default"] = "entry_1"
        f.create_dataset("cxi_version", data=140)
        entry = f.create_group("entry_1")
        entry.create_dataset("program_name", data="PyNX 2023.1")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data_1"
        inst = entry.create_group("instrument_1")
        inst.attrs["NX_class"] = "NXinstrument"
        nrj = 12.3984 / (wavelength_m * 1e10) * 1.60218e-16
        src = inst.create_group("source_1")
        src.create_dataset("energy", data=nrj).attrs["units"] = "J"
        beam = inst.create_group("beam_1")
        beam.create_dataset("incident_energy", data=nrj).attrs["units"] = "J"
        beam.create_dataset("incident_wavelength", data=wavelength_m).attrs["units"] = "m"
        det = inst.create_group("detector_1")
        det.attrs["NX_class"] = "NX_detector"
        det.create_dataset("distance", data=distance_m).attrs["units"] = "m"
        det.create_dataset("x_pixel_size", data=pixel_m).attrs["units"] = "m"
        det.create_dataset("y_pixel_size", data=pixel_m).attrs["units"] = "m"
        det.create_dataset("data", data=iobs, chunks=True, shuffle=True, compression="gzip")
        if mask is not None and np.sum(mask) != 0:
            det.create_dataset("mask", data=mask, chunks=True, shuffle=True, compression="gzip")
        data_1 = entry.create_group("data_1")
        data_1.attrs["NX_class"] = "NXdata"
        data_1["data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
        data_1.attrs["signal"] = "data"
        data_1.attrs["interpretation"] = "scaler"
        proc = data_1.create_group("process_1")
        proc.create_dataset("program", data="PyNX")
        proc.create_dataset("command", data="pynx-cdi-id01 data=x.npz")
    return path


def pynx_result_cxi(
    path: Path,
    obj: np.ndarray,
    support: np.ndarray,
    *,
    llk=1.0523,
    free_llk=1.061,
    pixel_object_m=6.1e-9,
    n_cycles=5,
) -> Path:
    """A result file as ``CDI.save_obj_cxi`` writes it (cycle_history record array included)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("cxi_version", data=150)
        entry = f.create_group("/entry_1")
        f.attrs["default"] = "entry_1"
        entry["/entry_last"] = h5py.SoftLink("/entry_1")
        f.attrs["creator"] = "PyNX"
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data_1"
        entry.create_dataset("program_name", data="PyNX 2023.1")
        image = entry.create_group("image_1")
        image.create_dataset("data", data=obj, chunks=True, shuffle=True, compression="gzip")
        image.attrs["NX_class"] = "NXdata"
        image.attrs["signal"] = "data"
        image.create_dataset("mask", data=support, chunks=True, shuffle=True, compression="gzip")
        image["support"] = h5py.SoftLink("/entry_1/image_1/mask")
        image.create_dataset("data_type", data="electron density")
        image.create_dataset("data_space", data="real")
        image.create_dataset("image_size", data=pixel_object_m * np.array(obj.shape[-3:]))
        inst = image.create_group("instrument_1")
        det = inst.create_group("detector_1")
        det.create_dataset("distance", data=0.83).attrs["units"] = "m"
        data_1 = entry.create_group("data_1")
        data_1["data"] = h5py.SoftLink("/entry_1/image_1/data")
        proc = image.create_group("process_1")
        proc.create_dataset("program", data="PyNX")
        proc.create_dataset("version", data="2023.1")
        conf = proc.create_group("configuration")
        conf.create_dataset("iobs_shape", data=obj.shape[-3:])
        res = proc.create_group("results")
        res.create_dataset("llk_poisson", data=llk)
        res.create_dataset("free_llk_poisson", data=free_llk)
        res.create_dataset("nb_point_support", data=int(support.sum()))
        dt = np.dtype(
            [
                ("cycle", "<i4"),
                ("algorithm", "S8"),
                ("llk_poisson", "<f4"),
                ("free_llk_poisson", "<f4"),
                ("nb_point_support", "<i4"),
                ("time", "<f4"),
            ]
        )
        hist = np.zeros(n_cycles, dtype=dt)
        hist["cycle"] = np.arange(n_cycles) * 20
        hist["algorithm"] = b"ER"
        hist["llk_poisson"] = np.linspace(3, llk, n_cycles)
        hist["nb_point_support"] = int(support.sum())
        res.create_dataset("cycle_history", data=hist)
    return path


# ------------------------------------------------------------------------------------------------ BLISS
def bliss_dataset(
    folder: Path,
    frames_by_scan: dict,
    *,
    detector="mpx1x4",
    layout="vds",
    sample="sample",
    dataset="0001",
    eta0=17.2,
    eta_step=0.005,
    energy_kev=9.0,
    distance_m=0.835,
    beam_center=(301.0, 255.5),
    extra_counters=True,
) -> Path:
    """An ID01 BLISS dataset file with LIMA frame files, as ESRF writes them. Returns the master path.

    ``frames_by_scan``: ``{scan_number: uint32 (n, rows, cols) frames}``. ``layout``: ``"vds"`` (virtual
    dataset over the LIMA file, the BLISS default), ``"external"`` (external link) or ``"direct"``.
    """
    import h5py
    import hdf5plugin

    folder = Path(folder)
    root = folder / f"{sample}_{dataset}"
    root.mkdir(parents=True, exist_ok=True)
    master = root / f"{sample}_{dataset}.h5"
    with h5py.File(master, "w") as f:
        f.attrs["creator"] = "Bliss"
        f.attrs["NX_class"] = "NXroot"
        for scan, frames in frames_by_scan.items():
            n = frames.shape[0]
            g = f.create_group(f"{scan}.1")
            g.attrs["NX_class"] = "NXentry"
            g.create_dataset(
                "title", data=f"ascan eta {eta0:.4f} {eta0 + eta_step * (n - 1):.4f} {n - 1} 0.5"
            )
            g.create_dataset("start_time", data="2024-03-12T10:11:12.123456+01:00")
            g.create_dataset("sample/name", data=sample)
            inst = g.create_group("instrument")
            det = inst.create_group(detector)
            det.attrs["NX_class"] = "NXdetector"
            det.create_dataset("distance", data=distance_m).attrs["units"] = "m"
            det.create_dataset("x_pixel_size", data=55e-6).attrs["units"] = "m"
            det.create_dataset("y_pixel_size", data=55e-6).attrs["units"] = "m"
            det.create_dataset("beam_center_x", data=beam_center[1]).attrs["units"] = "pixel"
            det.create_dataset("beam_center_y", data=beam_center[0]).attrs["units"] = "pixel"
            det.create_dataset("dim_i", data=frames.shape[2])
            det.create_dataset("dim_j", data=frames.shape[1])
            pos = inst.create_group("positioners")
            pos.create_dataset("eta", data=eta0 + eta_step * np.arange(n)).attrs["units"] = "deg"
            pos.create_dataset("phi", data=-0.52).attrs["units"] = "deg"
            pos.create_dataset("delta", data=34.61).attrs["units"] = "deg"
            pos.create_dataset("nu", data=1.25).attrs["units"] = "deg"
            pos.create_dataset("mononrj", data=energy_kev).attrs["units"] = "keV"
            meas = g.create_group("measurement")
            if extra_counters:
                meas.create_dataset("eta", data=eta0 + eta_step * np.arange(n))
                meas.create_dataset("mpx1x4_roi1", data=frames.reshape(n, -1).sum(axis=1))
                meas.create_dataset("epoch", data=1.7e9 + np.arange(n))
            if layout == "direct":
                det.create_dataset(
                    "data", data=frames, chunks=(1,) + frames.shape[1:], **hdf5plugin.Bitshuffle()
                )
                meas[detector] = h5py.SoftLink(f"/{scan}.1/instrument/{detector}/data")
                continue
            lima_dir = root / f"scan{scan:04d}"
            lima_dir.mkdir(exist_ok=True)
            lima = lima_dir / f"{detector}_0000.h5"
            with h5py.File(lima, "w") as lf:
                lf.create_dataset(
                    "entry_0000/measurement/data",
                    data=frames,
                    chunks=(1,) + frames.shape[1:],
                    **hdf5plugin.Bitshuffle(),
                )
            rel = f"scan{scan:04d}/{detector}_0000.h5"
            if layout == "vds":
                vl = h5py.VirtualLayout(shape=frames.shape, dtype=frames.dtype)
                vl[:] = h5py.VirtualSource(rel, "entry_0000/measurement/data", shape=frames.shape)
                det.create_virtual_dataset("data", vl, fillvalue=0)
                meas[detector] = h5py.SoftLink(f"/{scan}.1/instrument/{detector}/data")
            elif layout == "external":
                meas[detector] = h5py.ExternalLink(rel, "entry_0000/measurement/data")
            else:
                raise ValueError(layout)
    return master


# ------------------------------------------------------------------------------------------------ frames
def edf_frames(folder: Path, frames: np.ndarray, prefix="data_mpx4_") -> Path:
    """One EDF per frame, numbered from 1 without padding (natural order matters)."""
    import fabio.edfimage

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        fabio.edfimage.EdfImage(data=frame, header={"motor_pos": f"{17.2 + 0.005 * i:.4f}"}).write(
            str(folder / f"{prefix}{i + 1}.edf")
        )
    return folder


def tiff_frames(folder: Path, frames: np.ndarray, prefix="img_") -> Path:
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        tifffile.imwrite(folder / f"{prefix}{i}.tif", frame)
    return folder


# ------------------------------------------------------------------------------------------------ hostile
def hostile_corpus(folder: Path) -> dict[str, tuple[Path, dict]]:
    """``{case: (path, extra CLI/read kwargs)}``: each input must be refused with one clear line."""
    import h5py
    import tifffile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    good = pattern((8, 12, 10))
    cases: dict[str, tuple[Path, dict]] = {}

    p = pynx_data_cxi(folder / "full.cxi", good)
    raw = p.read_bytes()
    (folder / "truncated.cxi").write_bytes(raw[: len(raw) // 2])
    p.unlink()
    cases["truncated_hdf5"] = (folder / "truncated.cxi", {})

    with h5py.File(folder / "other.h5", "w") as f:
        f.create_dataset("entry/stuff", data=np.arange(10))
    cases["hdf5_without_datasets"] = (folder / "other.h5", {})
    with h5py.File(folder / "no_data.cxi", "w") as f:
        f.create_dataset("cxi_version", data=140)
        f.create_group("entry_1/instrument_1/detector_1").create_dataset("distance", data=1.0)
    cases["cxi_without_data"] = (folder / "no_data.cxi", {})

    np.save(folder / "frame_2d.npy", good[0])
    cases["array_2d"] = (folder / "frame_2d.npy", {})
    np.save(folder / "stack_4d.npy", np.stack([good, good]))
    cases["array_4d"] = (folder / "stack_4d.npy", {})
    tifffile.imwrite(folder / "frame_2d.tif", good[0])
    cases["tiff_2d"] = (folder / "frame_2d.tif", {})

    nan = good.astype(np.float32)
    nan[3, 4, 5] = np.nan
    np.save(folder / "nan.npy", nan)
    cases["nan_counts"] = (folder / "nan.npy", {})
    inf = good.astype(np.float32)
    inf[1, 1, 1] = np.inf
    np.savez(folder / "inf.npz", data=inf)
    cases["inf_counts"] = (folder / "inf.npz", {})
    neg = good.astype(np.int32)
    neg[:, 5, :] = -1
    pynx_data_cxi(folder / "negative.cxi", neg)
    cases["negative_counts"] = (folder / "negative.cxi", {})

    for suffix in (".npz", ".cxi", ".npy"):
        (folder / f"empty{suffix}").write_bytes(b"")
        cases[f"empty_file{suffix}"] = (folder / f"empty{suffix}", {})

    np.savez(folder / "mask_shape.npz", data=good, mask=np.zeros((8, 12, 9), np.uint8))
    cases["mask_other_shape_npz"] = (folder / "mask_shape.npz", {})
    pynx_data_cxi(folder / "mask_shape.cxi", good, mask=np.ones((7, 12, 10), np.uint8))
    cases["mask_other_shape_cxi"] = (folder / "mask_shape.cxi", {})

    (folder / "text.npz").write_text("intensity,mask\n1,2\n")
    cases["text_named_npz"] = (folder / "text.npz", {})
    np.save(folder / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases["pickled_npy"] = (folder / "pickled.npy", {})
    np.savez(folder / "two_stacks.npz", a=good, b=good)
    cases["npz_two_stacks"] = (folder / "two_stacks.npz", {})

    master = bliss_dataset(folder / "bliss_missing", {1: good, 2: good})
    shutil.rmtree(master.parent / "scan0001")
    cases["bliss_missing_lima_file"] = (master, {"scan": "1"})
    cases["bliss_several_scans_no_choice"] = (master, {})
    cases["bliss_unknown_scan"] = (master, {"scan": "7"})

    frames = folder / "frames_shapes"
    tiff_frames(frames, good)
    tifffile.imwrite(frames / "img_99.tif", good[0, :5])
    cases["frames_of_two_shapes"] = (frames, {})

    cases["missing_file"] = (folder / "does_not_exist.cxi", {})
    return cases
