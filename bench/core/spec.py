"""Matrix specs and cells: what to run, as frozen values with stable hashes.

A *cell* is one point of the matrix. Its identity is the hash of its full configuration
(plus the method's version and the protocol version), used everywhere: record file name,
MLflow tag, resume. A *spec* is lists of axis values; its cross product is the matrix.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from bench.core.axes import Granularity, Recovery, Scope, plain
from bench.core.errors import SpecError
from bench.core.registry import Registry

# Bump when a change to the engine changes what a cell measures: all hashes change with it.
# 2: seeded tie-breaking, clinical metrics, interleaved latency, the baseline recipe below.
# 3: pinned CPU kernels (bench/compute/kernels.py: AVX2 for ATen, oneDNN and MKL), the same bits on
#    any x86-64 CPU with AVX2; records add the baseline weight digest (schema 3).
PROTOCOL = 3

# How baselines are trained (bench/compute/train.py reads it from here); hashed into every baseline
# key, so changing the recipe retrains every baseline and re-runs every cell.
BASELINE_RECIPE: dict[str, Any] = {
    "optimizer": "adam", "lr": 1e-3, "batch": 128, "schedule": "cosine-per-step",
    "bn_images": 2048, "evals": 20, "select": "val (auc+bal_acc)/2, non-collapsed first",
}
DEFAULT_MIN_STEPS = 1000

DEFAULT_EPOCHS = {"smallcnn": 10, "vgg": 8, "resnet18": 5, "resnet20": 10, "vit": 10}
# What each backbone of bench/compute/models.py is built from (a backbone not listed is a cnn): it
# decides the granularities the backbone offers and which methods apply to it
# (``Method.architectures``). Read here, without importing torch, by the planner.
ARCHITECTURES = {"smallcnn": "cnn", "vgg": "cnn", "resnet18": "cnn", "resnet20": "cnn",
                 "vit": "transformer"}
# Each backbone's size as built for a 3-channel, 8-class dataset at 28 px (BloodMNIST):
# parameters, and operations per image as torch-pruning counts them
# (``torch_pruning.utils.count_ops_and_params``: multiply-accumulates of convs and Linear
# layers plus BatchNorm and pooling). Shown by ``xprune list backbones`` without importing
# torch; tests/test_resnet20.py checks every entry against the built model.
BACKBONE_SIZES = {"smallcnn": (28_376, 2_237_576), "vgg": (538_760, 15_671_304),
                  "resnet18": (11_172_936, 458_105_352), "resnet20": (272_344, 31_702_344),
                  "vit": (309_512, 16_716_416)}
ARCHITECTURE_GRANULARITIES = {"cnn": (Granularity.CHANNEL, Granularity.WEIGHT),
                              "transformer": tuple(Granularity)}
SIZES = (28, 64, 128, 224)  # the image sizes MedMNIST publishes
FIXED_SIZE = {"vit": 28}  # backbones built for one input size (patch grid and positions)
DEVICES = ("cpu", "cuda", "auto")
# A spec name becomes a folder (runs/<name>) and part of an MLflow experiment name.
SPEC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
# Ranges checked before any work (a seed seeds torch generators after offsets are added).
SEED_MAX = 2**31 - 1
EPOCHS_MAX = 10_000
INT_MAX = 10**9
# A spec file is a few lines: larger files and YAML aliases beyond a handful are refused
# before they are expanded (an "alias bomb" of 1 kB expands to gigabytes).
SPEC_BYTES_MAX = 1_000_000
SPEC_ALIASES_MAX = 32
_STRING_AXES = ("datasets", "backbones", "methods", "granularities", "scopes", "recovery")


def architecture(backbone: str) -> str:
    """``cnn`` or ``transformer``: what a backbone is built from."""
    return ARCHITECTURES.get(backbone, "cnn")


def applicable(backbone: str, granularity: str, architectures: tuple[str, ...] | None) -> bool:
    """Whether a method declaring ``architectures`` can score ``backbone`` at ``granularity``
    (the backbone must offer the granularity: heads exist in transformers only)."""
    arch = architecture(backbone)
    return (granularity in ARCHITECTURE_GRANULARITIES[arch]
            and (architectures is None or arch in architectures))


def stable_hash(payload: dict[str, Any]) -> str:
    """16 hex digits of sha256 over canonical JSON."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BaselineKey:
    """What determines a trained baseline: data, architecture, seed and recipe."""

    dataset: str
    size: int
    backbone: str
    seed: int
    epochs: int
    min_steps: int = 0  # specs default to DEFAULT_MIN_STEPS; 0 = exactly ``epochs`` epochs

    @property
    def hash(self) -> str:
        return stable_hash({"protocol": PROTOCOL, "kind": "baseline", "recipe": BASELINE_RECIPE,
                            **asdict(self)})


@dataclass(frozen=True)
class ScoreKey:
    """What determines a method's scores: the baseline, the method and its reference set."""

    baseline: BaselineKey
    method: str
    method_version: str
    granularity: Granularity
    reference_per_class: int

    def __post_init__(self) -> None:
        _typed(self, granularity=Granularity.parse)

    @property
    def hash(self) -> str:
        payload = {**asdict(self), "baseline": self.baseline.hash}
        return stable_hash({"protocol": PROTOCOL, "kind": "scores", **payload})


@dataclass(frozen=True)
class Cell:
    """One benchmark cell; immutable, hashable, JSON-round-trippable."""

    dataset: str
    size: int
    backbone: str
    method: str
    method_version: str
    granularity: Granularity
    scope: Scope
    sparsity: float
    recovery: Recovery
    seed: int
    epochs: int
    reference_per_class: int
    min_steps: int = 0
    # Measure explanation preservation (bench.compute.transparency). Not part of the hash: it adds
    # measurements, it does not change any other number of the cell.
    transparency: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        _typed(self, granularity=Granularity.parse, scope=Scope.parse, recovery=Recovery)

    @property
    def hash(self) -> str:
        coordinates = {k: v for k, v in asdict(self).items() if k != "transparency"}
        return stable_hash({"protocol": PROTOCOL, "kind": "cell", **coordinates})

    @property
    def baseline(self) -> BaselineKey:
        return BaselineKey(self.dataset, self.size, self.backbone, self.seed, self.epochs,
                           self.min_steps)

    @property
    def scores(self) -> ScoreKey:
        return ScoreKey(self.baseline, self.method, self.method_version, self.granularity,
                        self.reference_per_class)

    def label(self) -> str:
        return (f"{self.dataset}/{self.backbone}/{self.method}/{self.granularity}/{self.scope}"
                f"/s={self.sparsity:g}/{self.recovery}/seed{self.seed}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Cell":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values (a record's ``cell`` block)."""
        return {k: plain(v) for k, v in self.__dict__.items()}


def _typed(value: Any, **parsers: Any) -> None:
    """Parse the named fields of a frozen dataclass in place (once, at construction)."""
    for name, parse in parsers.items():
        object.__setattr__(value, name, parse(getattr(value, name)))


@dataclass(frozen=True)
class Spec:
    """Lists of axis values; ``*`` style wildcards in ``methods`` are resolved by the registry."""

    name: str
    datasets: tuple[str, ...]
    backbones: tuple[str, ...]
    methods: tuple[str, ...]
    granularities: tuple[Granularity, ...] = (Granularity.CHANNEL,)
    scopes: tuple[Scope, ...] = (Scope.LAYER,)
    sparsities: tuple[float, ...] = (0.5,)
    recovery: tuple[Recovery, ...] = (Recovery("bnrecal"),)
    seeds: tuple[int, ...] = (0,)
    size: int = 28
    reference_per_class: int = 10
    min_steps: int = DEFAULT_MIN_STEPS
    transparency: bool = True
    epochs: dict[str, int] = field(default_factory=dict, hash=False)
    # Sparsities of one granularity, where the YAML gives ``sparsities`` as a mapping
    # (``channel: [...]``, ``weight: [...]``); ``sparsities`` is then their union. Empty: every
    # granularity runs at every sparsity.
    sparsities_by_granularity: dict[str, tuple[float, ...]] = field(default_factory=dict,
                                                                   hash=False)
    # Where tasks compute: cpu (default: the published records), cuda, or auto (cuda when
    # present). Not part of any hash: see bench.compute.device.
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not SPEC_NAME.match(self.name):
            raise SpecError(f"spec name {self.name!r} is not a plain name (letters, digits, "
                            "'.', '_', '+', '-', at most 100; no '/' and no leading dot)")
        if self.size not in SIZES:
            raise SpecError(f"size {self.size!r} is not one of {', '.join(map(str, SIZES))}")
        for axis in ("datasets", "backbones", "methods", "granularities", "scopes",
                     "sparsities", "recovery", "seeds"):
            if not getattr(self, axis):
                raise SpecError(f"spec {self.name!r}: {axis} is empty")
        for s in self.sparsities:
            if not (isinstance(s, (int, float)) and 0 < s < 1):
                raise SpecError(f"sparsity {s!r} is outside (0, 1)")
        _typed(self, granularities=lambda values: tuple(map(Granularity.parse, values)),
               scopes=lambda values: tuple(map(Scope.parse, values)),
               recovery=lambda values: tuple(map(Recovery, values)))
        for seed in self.seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise SpecError(f"seed {seed!r} is not a non-negative integer")
            if seed > SEED_MAX:
                raise SpecError(f"seed {seed} is too large (at most {SEED_MAX})")
        for axis in ("datasets", "backbones", "methods", "granularities", "scopes",
                     "sparsities", "recovery", "seeds"):
            values = getattr(self, axis)
            repeated = sorted({str(v) for v in values if values.count(v) > 1})
            if repeated:
                raise SpecError(f"spec {self.name!r}: {axis} lists {', '.join(repeated)} "
                                "more than once")
        for key, value, low in (("reference_per_class", self.reference_per_class, 1),
                                ("min_steps", self.min_steps, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= INT_MAX:
                raise SpecError(f"{key} must be an integer from {low} to {INT_MAX}, got {value!r}")
        for backbone, value in self.epochs.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= EPOCHS_MAX:
                raise SpecError(f"epochs.{backbone} must be an integer from 1 to {EPOCHS_MAX}, "
                                f"got {value!r}")
        if not isinstance(self.device, str):
            raise SpecError(f"device must be a name, got {self.device!r}")
        if self.device not in DEVICES:
            raise SpecError(f"unknown device {self.device!r} (known: {', '.join(DEVICES)})")

    def epochs_for(self, backbone: str) -> int:
        return int(self.epochs.get(backbone, DEFAULT_EPOCHS.get(backbone, 10)))

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain YAML values (lists of strings and numbers; per-granularity
        sparsities as the mapping the YAML gave)."""
        out = {k: plain(v) for k, v in self.__dict__.items() if k != "sparsities_by_granularity"}
        if self.sparsities_by_granularity:
            out["sparsities"] = plain(self.sparsities_by_granularity)
        return out

    def sparsities_for(self, granularity: str) -> tuple[float, ...]:
        """The sparsities a granularity runs at."""
        return self.sparsities_by_granularity.get(str(granularity), self.sparsities)


_LIST_AXES = {"datasets", "backbones", "methods", "granularities", "scopes", "sparsities",
              "recovery", "seeds"}


def spec_from_dict(data: Any, name: str) -> Spec:
    """Build a Spec from parsed YAML, with one-line errors for anything malformed."""
    if not isinstance(data, dict):
        raise SpecError(f"spec {name!r}: expected a mapping of axis names to lists")
    known = {f.name for f in fields(Spec)} - {"sparsities_by_granularity"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"spec {name!r}: unknown key(s) {', '.join(unknown)} "
                        f"(known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {"name": str(data.get("name", name))}
    if not isinstance(data.get("name", name), str):
        raise SpecError(f"spec {name!r}: name must be a string, got {data['name']!r}")
    for key, value in data.items():
        if key == "sparsities" and isinstance(value, dict):
            by = {}
            for gran, values_ in value.items():
                try:
                    gran = str(Granularity.parse(gran))
                except SpecError:
                    raise SpecError(f"spec {name!r}: sparsities: unknown granularity {gran!r}") from None
                values_ = values_ if isinstance(values_, list) else [values_]
                if not values_:
                    raise SpecError(f"spec {name!r}: sparsities: {gran} has no sparsities")
                by[gran] = tuple(_number(v) for v in values_)
            values["sparsities_by_granularity"] = by
            values[key] = tuple(sorted({v for vs in by.values() for v in vs}))
        elif key in _LIST_AXES:
            if value is None:
                raise SpecError(f"spec {name!r}: {key} is null (give a list of values)")
            value = value if isinstance(value, list) else [value]
            if key == "sparsities":
                value = [_number(v) for v in value]
            elif key in _STRING_AXES:
                for v in value:
                    if not isinstance(v, str) or not v.strip():
                        raise SpecError(f"spec {name!r}: {key} entry {v!r} is not a name")
            values[key] = tuple(value)
        elif key in ("size", "reference_per_class", "min_steps"):
            values[key] = _integer(key, value)
        elif key == "device":
            values[key] = value
        elif key == "transparency":
            if not isinstance(value, bool):
                raise SpecError(f"spec {name!r}: transparency must be true or false, got {value!r}")
            values[key] = value
        elif key == "epochs":
            if not isinstance(value, dict):
                raise SpecError(f"spec {name!r}: epochs must map backbone names to integers")
            from bench.core import backbones

            for k in value:  # a misspelt backbone here would silently train the default
                if not isinstance(k, str):
                    raise SpecError(f"spec {name!r}: epochs key {k!r} is not a backbone name")
                try:
                    backbones.registry().get(k)
                except SpecError as exc:
                    raise SpecError(f"spec {name!r}: epochs: {exc}") from None
            values[key] = {k: _integer(f"epochs.{k}", v) for k, v in value.items()}
    missing = [a for a in ("datasets", "backbones", "methods") if a not in values]
    if missing:
        raise SpecError(f"spec {name!r}: missing {', '.join(missing)}")
    by = values.get("sparsities_by_granularity", {})
    grans = {str(Granularity.parse(g)) for g in values.get("granularities", ("channel",))}
    if by and set(by) != grans:
        raise SpecError(f"spec {name!r}: sparsities must list every granularity of the spec "
                        f"({', '.join(sorted(grans))}), got {', '.join(sorted(by)) or 'none'}")
    return Spec(**values)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"sparsity {value!r} is not a number")
    return float(value)


def _integer(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{key} must be an integer, got {value!r}")
    return value


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses duplicate keys and counts aliases (see SPEC_ALIASES_MAX)."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > SPEC_ALIASES_MAX:
                raise SpecError(f"more than {SPEC_ALIASES_MAX} YAML aliases (*name); "
                                "write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise SpecError(f"key {key!r} appears twice at line {key_node.start_mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_spec_file(path: Path, source: str) -> str:
    """The text of a spec file, with one-line errors for unreadable, huge or non-UTF-8 files."""
    try:
        with path.open("rb") as fh:
            blob = fh.read(SPEC_BYTES_MAX + 1)
    except OSError as exc:
        raise SpecError(f"spec file {source} cannot be read ({exc.strerror})") from None
    if len(blob) > SPEC_BYTES_MAX:
        raise SpecError(f"spec file {source} is larger than {SPEC_BYTES_MAX} bytes")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec file {source} is not UTF-8 text (byte {exc.start})") from None


@functools.cache
def presets() -> Registry[Traversable]:
    """The named presets: ``bench/core/presets/<name>.yaml``."""
    registry: Registry[Traversable] = Registry("preset")
    for path in sorted((resources.files("bench.core") / "presets").iterdir(), key=lambda p: p.name):
        if path.name.endswith(".yaml"):
            registry.add(path.name[:-5], path)
    return registry


def preset_names() -> list[str]:
    return list(presets())


def load_spec(source: str) -> Spec:
    """A preset name (``quick``) or a path to a YAML spec file."""
    path = Path(source)
    if source.endswith((".yaml", ".yml")) or path.exists():
        if not path.is_file():
            raise SpecError(f"spec file {source} not found")
        text, name = _read_spec_file(path, source), path.stem
    else:
        text, name = presets().get(source).read_text(), source
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except SpecError as exc:
        raise SpecError(f"spec {source}: {exc}") from None
    except RecursionError:
        raise SpecError(f"spec {source}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(f"spec {source}: malformed YAML{where}") from None
    return spec_from_dict(data, name)


def override(spec: Spec, **axes: Any) -> Spec:
    """Replace axes given on the command line (None = keep the spec's)."""
    given = {k: tuple(v) for k, v in axes.items() if v is not None}
    if "sparsities" in given:  # sparsities from the command line apply to every granularity
        given["sparsities_by_granularity"] = {}
    elif "granularities" in given and spec.sparsities_by_granularity:  # keep the chosen ones'
        by = {g: v for g, v in spec.sparsities_by_granularity.items()
              if g in {str(Granularity.parse(x)) for x in given["granularities"]}}
        given["sparsities_by_granularity"] = by
        given["sparsities"] = tuple(sorted({v for vs in by.values() for v in vs}))
    return replace(spec, **given)


def expand(spec: Spec, methods: dict[str, tuple]) -> list[Cell]:
    """The cross product, ordered so that cells sharing a baseline and scores are adjacent.

    ``methods`` maps each method to (version, declared granularities[, architectures]); a
    (method, granularity) pair the method does not declare is left out of the matrix, and so
    is every cell that is not :func:`applicable` (a granularity the backbone does not offer,
    a backbone whose architecture the method does not declare).
    """
    cells = []
    for dataset, backbone, seed, method, gran, scope, sparsity, rec in itertools.product(
        spec.datasets, spec.backbones, spec.seeds, spec.methods, spec.granularities,
        spec.scopes, sorted(spec.sparsities), spec.recovery,
    ):
        version, supported, *rest = methods[method]
        if sparsity not in spec.sparsities_for(gran):
            continue
        if gran in supported and applicable(backbone, gran, rest[0] if rest else None):
            cells.append(Cell(dataset, spec.size, backbone, method, version, gran, scope,
                              float(sparsity), rec, seed, spec.epochs_for(backbone),
                              spec.reference_per_class, spec.min_steps, spec.transparency))
    return cells
