"""One frozen description of a selection, and its codecs: JSON, `nait select` arguments, URL query
parameters and the environment.

`SelectionSpec` holds what decides a selection's result (data, model, capture, scoring, cut, merge); the
defaults live here once (DEFAULT_CUT, DEFAULT_MERGE, ...) and the other modules import them.
`ExecutionSettings` holds how a run is carried out (device, batch budget, Ray, where the stores live):
never part of the spec, its JSON or its hash, so the same selection made on another machine is equal.

The argv codec's reader, `nait_core.cli.spec_args.from_argv`, parses through the real `nait select` parser,
so the two cannot drift (it lives in the CLI layer: the engine never imports the CLI).
The environment codec is one variable, NAIT_SPEC_JSON, holding `to_json()`: one format, not two.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
from dataclasses import asdict, dataclass, field, fields, replace

from .cuts import MERGES, Cut
from .data import FORMATS
from .features import PCA_REDUCTIONS
from .methods.layered import parse_layers
from .model_files import BUNDLED_MODEL
from .scoring import RDS_POOLS, ScoreOptions

DEFAULT_CUT = Cut(ratio=0.1)
DEFAULT_MERGE = "union"
DEFAULT_MAX_LENGTH = 1024
DEFAULT_EXACT_SAMPLE = 2000
DTYPES = ("float32", "bfloat16", "float16")
ENV_VARIABLE = "NAIT_SPEC_JSON"


@dataclass(frozen=True)
class DataSpec:
    candidates: str = ""
    targets: tuple[str, ...] = ()
    target_size: int | None = None  # None: every target record
    seed: int = 0
    format: str | None = None  # None: detected per record
    text_field: str | None = None
    skip_invalid: bool = False

    def __post_init__(self):
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}")
        if self.target_size is not None and self.target_size < 1:
            raise ValueError(f"target_size must be at least 1, not {self.target_size}")


@dataclass(frozen=True)
class ModelSpec:
    name: str = BUNDLED_MODEL
    dtype: str | None = None  # None: bf16 on CUDA, fp32 on CPU
    neuron_module: str | None = None
    trust_remote_code: bool = False

    def __post_init__(self):
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")


@dataclass(frozen=True)
class CaptureSpec:
    reductions: tuple[str, ...] = ()  # () = the CLI's default reductions
    max_length: int = DEFAULT_MAX_LENGTH
    sketch: int = 0  # a compact pool's K (0: exact)
    sketch_seed: int = 0
    exact_sample: int = DEFAULT_EXACT_SAMPLE

    def __post_init__(self):
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1, not {self.max_length}")
        if self.exact_sample < 0:
            raise ValueError(f"exact_sample must be 0 or more, not {self.exact_sample}")
        if self.sketch < 0:
            raise ValueError(f"sketch must be 0 (exact) or a positive K, not {self.sketch}")


@dataclass(frozen=True)
class SelectionSpec:
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    capture: CaptureSpec = field(default_factory=CaptureSpec)
    scoring: ScoreOptions = field(default_factory=ScoreOptions)
    cut: Cut = DEFAULT_CUT
    merge: str = DEFAULT_MERGE

    def __post_init__(self):
        if self.merge not in MERGES:
            raise ValueError(f"merge must be one of {', '.join(MERGES)}, not {self.merge!r}")

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal specs give equal text."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SelectionSpec:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"selection spec JSON: {error}") from None
        return _build(cls, raw, "spec")

    def digest(self) -> str:
        """sha256 of the canonical JSON: stable across processes (`hash()` of a str is salted)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


@dataclass(frozen=True)
class ExecutionSettings:
    """How a run is carried out; never part of a spec, a store identity or a hash."""

    store_dir: str = "cached_features"
    device: str | None = None
    batch_tokens: int | None = None  # None: auto
    ray: str | None = None
    ray_workers: int | None = None


_TUPLES = {"targets", "reductions", "layers"}


def _build(cls, raw, where: str):
    """A dataclass from its `asdict` form, naming the field that is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object, not {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    if unknown := sorted(set(raw) - set(known)):
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    nested = {"data": DataSpec, "model": ModelSpec, "capture": CaptureSpec, "scoring": ScoreOptions, "cut": Cut}
    values = {}
    for name, value in raw.items():
        if cls is SelectionSpec and name in nested:
            value = _build(nested[name], value, f"{where}.{name}")
        elif name in _TUPLES and value is not None:
            if not isinstance(value, list):
                raise ValueError(f"{where}.{name}: expected a list, not {value!r}")
            value = tuple(value)
        values[name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None


# ---------------------------------------------------------------- argv: `nait select`


def _number(value) -> str:
    """A number as the CLI parses it back to the same value (repr of a float round-trips exactly)."""
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def _pair(option: str, value: str) -> list[str]:
    """`--option value`; `--option=value` for a value starting with "-" that argparse would read as an
    option (-1e-05 is not among the negative numbers it recognises)."""
    as_option = value.startswith("-") and not re.fullmatch(r"-\d+|-\d*\.\d+", value)  # argparse's own test
    return [f"{option}={value}"] if as_option else [option, value]


def cut_option(cut: Cut) -> tuple[str, float | int]:
    """The one field a cut sets: ("ratio", 0.1), ("top", 50) or ("min_score", 0.2)."""
    return next((k, v) for k, v in vars(cut).items() if v is not None)


def to_argv(
    spec: SelectionSpec,
    execution: ExecutionSettings | None = None,
    out: str = "selected.jsonl",
    scores: str | None = None,
) -> list[str]:
    """The arguments of `nait select` (the first two are "nait", "select"). Options at the CLI's defaults
    are left out, except the scoring ones, the cut, merge and store folder, which are always spelled out."""
    d, m, c, o = spec.data, spec.model, spec.capture, spec.scoring
    execution = execution or ExecutionSettings()
    argv = ["nait", "select", "--candidates", d.candidates, *[a for t in d.targets for a in ("--target", t)]]
    if d.target_size:
        argv += ["--target-size", str(d.target_size)]
    if d.seed:
        argv += ["--seed", str(d.seed)]
    if d.format:
        argv += ["--format", d.format]
    if d.text_field:
        argv += ["--text-field", d.text_field]
    if d.skip_invalid:
        argv += ["--skip-invalid"]
    argv += ["--model", m.name]
    if m.dtype:
        argv += ["--dtype", m.dtype]
    if m.neuron_module:
        argv += ["--neuron-module", m.neuron_module]
    if m.trust_remote_code:
        argv += ["--trust-remote-code"]
    if execution.device:
        argv += ["--device", execution.device]
    if c.max_length != DEFAULT_MAX_LENGTH:
        argv += ["--max-length", str(c.max_length)]
    if c.reductions:
        argv += ["--reductions", ",".join(c.reductions)]
    if c.sketch:  # the same compact pool (and exact sample) the app scored: the same store key
        argv += ["--sketch", str(c.sketch)] + (["--sketch-seed", str(c.sketch_seed)] if c.sketch_seed else [])
        argv += ["--exact-sample", str(c.exact_sample)]
    else:  # read only with --sketch, but kept so the spec comes back whole
        argv += ["--sketch-seed", str(c.sketch_seed)] if c.sketch_seed else []
        argv += ["--exact-sample", str(c.exact_sample)] if c.exact_sample != DEFAULT_EXACT_SAMPLE else []
    argv += ["--method", o.method, *_pair("--fire-threshold", o.fire_threshold), "--reduction", o.reduction]
    argv += ["--layer-norm", o.layer_norm] + ([] if o.centre else ["--no-centre"])
    default = ScoreOptions()
    if o.rds_pool != default.rds_pool:
        argv += ["--rds-pool", o.rds_pool]
    if o.embed_model != default.embed_model:
        argv += ["--embed-model", o.embed_model]
    if o.layers is not None:
        argv += ["--layers", ",".join(map(str, o.layers))]
    kind, value = cut_option(spec.cut)
    argv += [
        *_pair(f"--{kind.replace('_', '-')}", _number(value)),
        "--merge",
        spec.merge,
        "--store-dir",
        execution.store_dir,
    ]
    argv += ["--out", str(out)] + (["--scores", str(scores)] if scores else [])
    return argv


def to_command(spec: SelectionSpec, execution=None, out: str = "selected.jsonl", scores: str | None = None) -> str:
    """`to_argv` as one shell line."""
    return shlex.join(to_argv(spec, execution, out, scores))


# ---------------------------------------------------------------- URL query parameters (the studio's links)

QUERY_KEYS = (
    "method",
    "threshold",
    "centre",
    "reduction",
    "layer_norm",
    "rds_pool",
    "embed_model",
    "layers",
    "ratio",
    "top",
    "min_score",
    "merge",
)


def _query_number(value) -> str:
    """What the studio has always written (`:g`), unless that loses digits: then repr, which is exact."""
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def to_query(spec: SelectionSpec) -> dict[str, str]:
    """The scoring, cut and merge that differ from the defaults (data and model are the loaded session's)."""
    o, default = spec.scoring, ScoreOptions()
    params = {}
    if o.method != default.method:
        params["method"] = o.method
    if o.fire_threshold != default.fire_threshold:
        params["threshold"] = o.fire_threshold
    if o.centre != default.centre:
        params["centre"] = "0"
    if o.reduction != default.reduction:
        params["reduction"] = o.reduction
    if o.layer_norm != default.layer_norm:
        params["layer_norm"] = o.layer_norm
    if o.rds_pool != default.rds_pool:
        params["rds_pool"] = o.rds_pool
    if o.embed_model != default.embed_model:
        params["embed_model"] = o.embed_model
    if o.layers is not None:
        params["layers"] = ",".join(map(str, o.layers))
    if spec.cut != DEFAULT_CUT:
        kind, value = cut_option(spec.cut)
        params[kind] = _query_number(value)
    if spec.merge != DEFAULT_MERGE:
        params["merge"] = spec.merge
    return params


def _read(params, name: str, cast, default):
    if name not in params:
        return default
    try:
        return cast(params[name])
    except ValueError as error:
        raise ValueError(f"query parameter {name}={params[name]!r}: {error}") from None


def _one_of(choices):
    def cast(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return cast


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # inf or NaN: the page's number box raises on it
        raise ValueError("must be a finite number")
    return value


def from_query(params, base: SelectionSpec | None = None) -> SelectionSpec:
    """`base` with the scoring, cut and merge the query parameters give (missing ones: the defaults);
    a bad value raises ValueError naming the parameter."""
    base = base or SelectionSpec()
    default = ScoreOptions()
    values = {
        "method": _read(params, "method", str, default.method),
        "centre": _read(params, "centre", lambda t: t != "0", default.centre),
        "fire_threshold": _read(params, "threshold", str, default.fire_threshold),
        "reduction": _read(params, "reduction", _one_of(PCA_REDUCTIONS), default.reduction),
        "layer_norm": _read(params, "layer_norm", _one_of(("none", "z")), default.layer_norm),
        "rds_pool": _read(params, "rds_pool", _one_of(RDS_POOLS), default.rds_pool),
        "embed_model": _read(params, "embed_model", str, default.embed_model),
        "layers": _read(params, "layers", parse_layers, default.layers),
    }
    try:
        scoring = ScoreOptions(**values)
    except ValueError as error:  # method or threshold: ScoreOptions' own message, with the parameter named
        name = "threshold" if "threshold" in str(error) else "method" if "method" in str(error) else "layers"
        raise ValueError(f"query parameter {name}={params.get(name)!r}: {error}") from None
    if "top" in params:
        cut = _read(params, "top", lambda t: Cut(top=int(t)), None)
    elif "min_score" in params:
        cut = _read(params, "min_score", lambda t: Cut(min_score=_finite(t)), None)
    else:
        cut = _read(params, "ratio", lambda t: Cut(ratio=float(t)), DEFAULT_CUT)
    merge = _read(params, "merge", _one_of(MERGES), DEFAULT_MERGE)
    return replace(base, scoring=scoring, cut=cut, merge=merge)


# ---------------------------------------------------------------- environment (workers, Ray actors)


def to_env(spec: SelectionSpec) -> dict[str, str]:
    return {ENV_VARIABLE: spec.to_json()}


def from_env(environ) -> SelectionSpec:
    if ENV_VARIABLE not in environ:
        raise ValueError(f"{ENV_VARIABLE} is not set")
    try:
        return SelectionSpec.from_json(environ[ENV_VARIABLE])
    except ValueError as error:
        raise ValueError(f"{ENV_VARIABLE}: {error}") from None
