"""The pipeline as data: a typed, validated configuration of read → mask → inpaint → phase → strain → export.

A configuration is a YAML mapping; every key but ``scans`` may be left out and then takes its default. The
defaults are read from the functions that do the work (``core.phasing.phase``, ``core.postprocess``,
``models.inpaint.inpaint``, ``models.dl_phasing``) and their constants (``DEFAULT_RECIPE``...), so they
live in one place. The smallest useful file::

    scans: [scan_a.npz, scan_b.npz, "more/*.npz"]
    phase: {method: conventional, recipe: "HIO**50, ER**50", runs: 2}

Relative paths are relative to the folder of the config file. Validation happens when the file is loaded,
before any work: an unknown key, a value of the wrong type or outside its allowed values, and a file that
does not exist each raise a one-line :class:`~napari_bcdi_dl.core.errors.BCDIError` naming the key.
``docs/batch.md`` lists every key (:func:`reference` makes that table).

Models are imported inside functions only: loading a configuration never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, Strict, ValidationError, field_validator

from ..core.errors import BCDIError
from ..core.gap_fill import METHODS as _BASELINES
from ..core.phasing import phase as _phase
from ..core.phasing.backend import BACKENDS
from ..core.phasing.recipe import DEFAULT_RECIPE
from ..core.phasing.runs import SELECT
from ..core.phasing.support import METHODS as SUPPORT_METHODS
from ..core.postprocess import postprocess as _postprocess

Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
Float = Annotated[float, Strict()]  # strict float still takes an int

INPAINT_METHODS = ("none", "dl", *_BASELINES)
PHASE_METHODS = ("conventional", "dl")
RECONSTRUCTION_FORMATS = ("npz", "cxi")
GLOB_CHARS = "*?["


def _default(func: Callable, name: str) -> Any:
    """The default of parameter ``name`` of ``func`` (the one place the pipeline's defaults come from)."""
    return inspect.signature(func).parameters[name].default


def _models_default(module: str, name: str, param: str | None = None) -> Callable[[], Any]:
    """A default factory reading a constant (or a parameter default) of a ``models`` module, lazily."""

    def factory() -> Any:
        import importlib

        mod = importlib.import_module(f"napari_bcdi_dl.models.{module}")
        return _default(getattr(mod, name), param) if param else getattr(mod, name)

    return factory


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=False)


class ScanSpec(_Section):
    """One ``scans`` entry: a file, a folder of frames, or a glob; for BLISS, the file and scan numbers."""

    file: Str = Field(description="scan file, folder of frames or glob (relative to the config file)")
    scans: list[Int | Str] | None = Field(
        None, description="BLISS scan numbers (\"12\", \"12.1\"); default: every scan of the file")
    detector: Str | None = Field(None, description="BLISS detector (default: read.detector, else found)")
    mask: Str | None = Field(None, description="a mask file for this scan, added to mask.file")
    name: Str | None = Field(None, description="result folder name (default: from the file name)")

    @field_validator("scans")
    @classmethod
    def _scan_names(cls, v):
        return None if v is None else [str(s) for s in v]


class ReadConfig(_Section):
    """How scans are read (``core.io.read``)."""

    detector: Str | None = Field(None, description="BLISS detector under measurement/ for every scan")
    roi: tuple[Int, Int, Int, Int] | None = Field(
        None, description="detector region to keep: [row0, row1, col0, col1]")


class MaskConfig(_Section):
    """The gap / invalid-voxel mask (1 = invalid): the union of the sources switched on."""

    use_stored: Bool = Field(True, description="use the mask stored with the data")
    file: Str | None = Field(None, description="a mask file (npy, npz, tif, cxi) for every scan")
    preset: Str | None = Field(None, description="detector preset gaps (core.masks.PRESETS, e.g. maxipix)")
    detect_gaps: Bool = Field(False, description="find dead detector rows/columns in the data")
    dilate: Int = Field(0, ge=0, description="grow the mask by this many voxels")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v):
        if v is not None:
            from ..core.masks import get_preset

            get_preset(v)
        return v


class InpaintConfig(_Section):
    """Filling the detector gaps before phasing (``models.inpaint.inpaint``)."""

    method: Literal[INPAINT_METHODS] = Field("none", description="none (skip), dl (U-Net) or a baseline")
    step: Int = Field(default_factory=_models_default("inpaint", "inpaint", "step"), ge=1,
                      description="dl: window stride along the gap")
    batch: Int = Field(default_factory=_models_default("inpaint", "inpaint", "batch"), ge=1,
                       description="dl: windows per model call")
    finetune: Bool = Field(False, description="dl: fine-tune the model on the pattern's own crops first")
    finetune_steps: Int = Field(default_factory=_models_default("finetune", "finetune", "steps"), ge=1,
                                description="fine-tuning steps")
    keep_mask: Bool = Field(True, description="phase with the gap still masked: free in the phasing (the fill is the "
                                              "DL network's input); false: the fill is taken as measured")


class PhaseConfig(_Section):
    """Phase retrieval: ``conventional`` (``core.phasing.phase``) or ``dl`` (``models.dl_phasing.dl_phase``)."""

    method: Literal[PHASE_METHODS] = Field("conventional", description="conventional or dl")
    recipe: Str = Field(DEFAULT_RECIPE, description="conventional: algorithm recipe")
    runs: Int = Field(_default(_phase, "runs"), ge=1, description="conventional: runs from random starts")
    seed: Int = Field(_default(_phase, "seed"), description="random seed (runs, free voxels)")
    support_threshold: Float = Field(_default(_phase, "support_threshold"), gt=0, lt=1,
                                     description="conventional: shrink-wrap threshold")
    support_method: Literal[SUPPORT_METHODS] = Field(_default(_phase, "support_method"),
                                                     description="conventional: threshold relative to the max, "
                                                                 "rms or average of the smoothed modulus")
    select: Literal[SELECT] = Field(_default(_phase, "select"), description="conventional: best run by")
    backend: Literal[BACKENDS] = Field(_default(_phase, "backend"), description="array backend")
    refine: Str | None = Field(None, description="dl: refinement recipe or name (paper, hio-er, raar-er);"
                                                    " default models.dl_phasing.DEFAULT_REFINE")
    refine_iter: Int | None = Field(None, ge=0, description="dl: published border-only ER with N "
                                                              "iterations instead of refine (0: unrefined)")
    candidates: Int = Field(default_factory=_models_default("dl_phasing", "DEFAULT_CANDIDATES"), ge=1, le=8,
                            description="dl: predicted candidates refined, best by free LLK")
    tta: Int = Field(default_factory=_models_default("dl_phasing", "predict_and_refine", "tta"), ge=1, le=8,
                     description="dl: input flips tried by the network")
    corrector: Bool = Field(True, description="dl: add the phase corrector's candidates to the network's (the "
                                              "shipped corrector, models/phase_corrector.py; false: half the time)")

    @field_validator("recipe")
    @classmethod
    def _recipe_parses(cls, v):
        from ..core.phasing.recipe import parse_recipe

        parse_recipe(v)
        return v

    @field_validator("refine")
    @classmethod
    def _refine_parses(cls, v):
        if v is not None:
            from ..core.phasing.refine import refine_steps

            refine_steps(v)
        return v


class GeometryConfig(_Section):
    """Experiment geometry; each value given overrides what the scan file holds (``core.types.Geometry``)."""

    energy_kev: Float | None = Field(None, gt=0, description="X-ray energy (keV)")
    distance_m: Float | None = Field(None, gt=0, description="sample-detector distance (m)")
    pixel_size_m: Float | tuple[Float, Float] | None = Field(
        None, description="pixel size (m): one value or [rows, cols]")
    rocking_step_deg: Float | None = Field(None, description="rocking-curve step (degrees)")
    rocking_motor: Literal["eta", "phi"] | None = Field(None, description="rocking motor")
    angles_deg: dict[Str, Float] = Field(default_factory=dict,
                                         description="diffractometer angles, e.g. {delta: 35.1, nu: 0.5}")
    hkl: tuple[Int, Int, Int] | None = Field(None, description="Bragg reflection [h, k, l]")
    lattice_nm: Float | None = Field(None, gt=0, description="cubic lattice parameter (nm)")


class StrainConfig(_Section):
    """Post-processing (``core.postprocess.postprocess``): phase, displacement, strain."""

    enabled: Bool = Field(True, description="compute the strain")
    frame: Literal["lab", "detector"] | None = Field(
        None, description="output grid when the geometry is known (default lab)")
    lab_voxel_nm: Float | None = Field(_default(_postprocess, "lab_voxel_nm"), gt=0,
                                          description="voxel of the lab grid (default: finest detector voxel)")
    offset: Literal["mean", "com", "none"] = Field(_default(_postprocess, "offset"),
                                                   description="phase offset removal")
    unwrap: Bool = Field(_default(_postprocess, "unwrap"), description="unwrap the phase")
    remove_ramp: Bool = Field(_default(_postprocess, "remove_ramp"), description="remove the phase ramp")
    flip: Bool = Field(_default(_postprocess, "flip"), description="take the twin")
    isosurface: Float | None = Field(_default(_postprocess, "isosurface"), ge=0, lt=1,
                                        description="keep support voxels with |rho| >= F max")
    crop: Int | None = Field(_default(_postprocess, "crop_margin"), ge=0,
                                description="crop to the support plus N voxels")
    phase_sign: Literal[1, -1] = Field(_default(_postprocess, "phase_sign"), description="-1: phase is -G.u")
    voxel_size_nm: Float | tuple[Float, Float, Float] | None = Field(
        None, description="voxel size (nm) when no geometry is known: one value or [z, y, x]")


class ExportConfig(_Section):
    """What is written in each scan's result folder."""

    reconstruction: list[Literal[RECONSTRUCTION_FORMATS]] = Field(
        default_factory=lambda: ["npz"], description="reconstruction.npz and/or reconstruction.cxi (PyNX)")
    strain: Bool = Field(True, description="strain.npz (cdiutils keys, as 'bcdi-dl strain' writes it)")
    vti: Bool = Field(False, description="strain.vti for ParaView")
    thumbnail: Bool = Field(True, description="thumbnail.png (central slices) for summary.html")

    @field_validator("reconstruction", mode="before")
    @classmethod
    def _one_or_more(cls, v):
        return [v] if isinstance(v, str) else v


class PipelineConfig(_Section):
    """The whole pipeline: the scans and one section per step."""

    scans: list[ScanSpec] = Field(default_factory=list, description="files, folders, globs or BLISS entries")
    read: ReadConfig = Field(default_factory=ReadConfig)
    mask: MaskConfig = Field(default_factory=MaskConfig)
    inpaint: InpaintConfig = Field(default_factory=InpaintConfig)
    phase: PhaseConfig = Field(default_factory=PhaseConfig)
    geometry: GeometryConfig = Field(default_factory=GeometryConfig)
    strain: StrainConfig = Field(default_factory=StrainConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    provenance: dict | None = Field(None, description="written by a run (sidecar); ignored on input")

    _base: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr("<config>")

    @field_validator("scans", mode="before")
    @classmethod
    def _entries(cls, v):
        if isinstance(v, (str, dict)):
            v = [v]
        if isinstance(v, list):
            return [{"file": s} if isinstance(s, str) else s for s in v]
        return v

    # ------------------------------------------------------------------------------------------ paths
    @property
    def base_dir(self) -> Path:
        """Folder that relative paths are relative to (the config file's)."""
        return self._base

    @property
    def source(self) -> str:
        """Where the configuration came from (a file name, for messages)."""
        return self._source

    def path(self, p: str | Path) -> Path:
        """``p`` made absolute (relative to :attr:`base_dir`), ``~`` expanded."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self._base / q)

    def check_files(self) -> None:
        """Raise a one-line BCDIError for a named file (not a glob) that does not exist."""
        named = [(f"scans[{i}].file", s.file) for i, s in enumerate(self.scans) if not is_glob(s.file)]
        named += [(f"scans[{i}].mask", s.mask) for i, s in enumerate(self.scans) if s.mask]
        if self.mask.file:
            named.append(("mask.file", self.mask.file))
        for key, p in named:
            if not self.path(p).exists():
                raise BCDIError(f"{self._source}: {key}: no such file {self.path(p)}; fix the path (relative "
                                f"paths are relative to the config file's folder)")

    # ------------------------------------------------------------------------------------------ dumps
    def resolved(self) -> dict:
        """Every key with its value (defaults filled in, paths absolute), JSON/YAML-ready, no provenance."""
        d = self.model_dump(mode="json", exclude={"provenance"})
        for s in d["scans"]:
            s["file"] = str(self.path(s["file"]))
            if s.get("mask"):
                s["mask"] = str(self.path(s["mask"]))
        if d["mask"]["file"]:
            d["mask"]["file"] = str(self.path(d["mask"]["file"]))
        ph = d["phase"]
        if ph["refine"] is None and ph["refine_iter"] is None:
            from ..models.dl_phasing import DEFAULT_REFINE

            ph["refine"] = DEFAULT_REFINE
        return d

    def digest(self) -> str:
        """SHA-256 of :meth:`resolved` without the scans: the same steps give the same digest."""
        d = self.resolved()
        d.pop("scans")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def is_glob(text: str) -> bool:
    """True when a scans entry is a pattern (holds ``*``, ``?`` or ``[``)."""
    return any(c in str(text) for c in GLOB_CHARS)


# ---------------------------------------------------------------------------------------------- loading
def _key(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("tagged-union", "function-after", "function-before", "union"):
            continue
        elif isinstance(part, str) and ("[" in part or part in ("int", "str", "float", "tuple", "list")):
            continue  # a union member's name, not a key
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _section_of(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class a location's last key belongs to (for the list of allowed keys)."""
    cls: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or cls is None:
            continue
        field = cls.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or ()
        nxt = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        for a in args:
            if isinstance(a, type) and issubclass(a, BaseModel):
                nxt = a
        cls = nxt
    return cls


def _message(err: dict, source: str) -> str:
    key = _key(err["loc"])
    kind = err["type"]
    got = err.get("input")
    if kind == "extra_forbidden":
        section = _section_of(PipelineConfig, err["loc"])
        allowed = ", ".join(section.model_fields) if section is not None else "see docs/batch.md"
        return f"{source}: unknown key '{key}'; allowed keys there: {allowed} (docs/batch.md)"
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return f"{source}: '{key}' is {got!r}; allowed values: {allowed}"
    if kind == "missing" and isinstance(err["loc"][-1], int):
        return f"{source}: '{_key(err['loc'][:-1])}' has too few values"
    if kind == "too_long":
        return f"{source}: '{key}' has too many values ({got!r})"
    if kind == "missing":
        return f"{source}: '{key}' is missing; add it (docs/batch.md)"
    if kind == "value_error":
        msg = str(err.get("ctx", {}).get("error", err["msg"]))
        return f"{source}: '{key}': {msg}"
    expected = {"int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
                "bool_type": "true or false", "bool_parsing": "true or false", "string_type": "a string",
                "float_type": "a number", "float_parsing": "a number", "list_type": "a list",
                "tuple_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
                "model_attributes_type": "a mapping"}.get(kind)
    if expected:
        return f"{source}: '{key}' must be {expected}, got {got!r} ({type(got).__name__})"
    return f"{source}: '{key}': {err['msg'][:1].lower()}{err['msg'][1:]} (got {got!r})"


def config_from_dict(data: Any, base_dir: str | Path | None = None, *, source: str = "<config>",
                     check_files: bool = True) -> PipelineConfig:
    """Validate a mapping (e.g. parsed YAML) into a :class:`PipelineConfig`.

    Parameters
    ----------
    data : the mapping.
    base_dir : folder that relative paths are relative to (default: the current folder).
    source : name used in error messages (the config file).
    check_files : raise when a named scan or mask file does not exist.

    Raises
    ------
    BCDIError
        One line naming the first bad key (and how many more there are).
    """
    if data is None:
        raise BCDIError(f"{source}: the configuration is empty; list the scans and steps (docs/batch.md)")
    if not isinstance(data, dict):
        raise BCDIError(f"{source}: the configuration must be a mapping of keys (scans:, phase:, ...), "
                        f"not a {type(data).__name__}")
    try:
        cfg = PipelineConfig.model_validate(data)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise BCDIError(_message(errors[0], source) + more) from None
    except BCDIError as err:  # raised by a validator outside pydantic's wrapping
        raise BCDIError(f"{source}: {err}") from None
    cfg._base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    cfg._source = source
    if check_files:
        cfg.check_files()
    return cfg


def load_config(path: str | Path, *, check_files: bool = True) -> PipelineConfig:
    """Read and validate a YAML configuration (or a sidecar written by a run); see the module docstring."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise BCDIError(f"config {p}: no such file; give the YAML file that lists the scans and steps")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise BCDIError(f"config {p}: cannot be read ({err}); save it as UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise BCDIError(f"config {p}: not valid YAML{where} ({problem}); fix the syntax") from None
    return config_from_dict(data, p.resolve().parent, source=str(p), check_files=check_files)


def dump_yaml(data: dict) -> str:
    """YAML text of a JSON-ready mapping, keys in their order."""
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True, width=110)


def reference() -> list[tuple[str, str, str]]:
    """``(key, default, description)`` of every key, in order (the table of docs/batch.md)."""
    rows: list[tuple[str, str, str]] = []
    defaults = PipelineConfig().model_dump(mode="json")

    def walk(model: type[BaseModel], prefix: str, values: dict) -> None:
        for name, f in model.model_fields.items():
            sub = _section_of(model, (name, "x"))
            key = f"{prefix}{name}"
            if sub is not None and sub is not model and name != "scans":
                walk(sub, key + ".", values.get(name) or {})
                continue
            rows.append((key, json.dumps(values.get(name)), f.description or ""))

    walk(PipelineConfig, "", defaults)
    scan_fields = ScanSpec.model_fields
    rows += [(f"scans[].{n}", "null" if n != "file" else "(required)", f.description or "")
             for n, f in scan_fields.items()]
    return rows
