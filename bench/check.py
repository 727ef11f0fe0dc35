"""``xprune check``: run the plugin contract on a tiny model before anyone submits.

For each declared granularity: the plugin runs, returns one finite tensor of the right
shape per site, gives identical scores twice under the same seed, and finishes within a
time budget. It runs on the requested backbone where the method applies to it at that
granularity, else on the built-in ViT (attention heads; transformer-only methods). Each failure has its own message so a contributor knows what to fix. Then the
soundness stage (:mod:`bench.compute.soundness`) judges the scores on a small trained model.

The plugin never runs in this process: its declarations are read in a metadata process and
each run of ``score()`` is a fresh scoring process (``bench.compute.sandbox``), its import bounded
by ``$XPRUNE_PLUGIN_IMPORT_TIMEOUT`` and ``score()`` by twice the budget. A plugin that
exits (``sys.exit(0)``, ``os._exit(0)``), dies or hangs fails its check with the way its
process ended; it cannot end ``check`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bench import plugins
from bench.compute import data, models, sandbox, soundness
from bench.core.errors import PluginError
from bench.core.method import MethodLabel
from bench.core.spec import applicable
from bench.plugins import MethodInfo

SEED = 0


@dataclass(frozen=True)
class CheckResult:
    """One check of one plugin (at one granularity, where it applies)."""

    plugin: str
    check: str
    ok: bool
    message: str = ""
    verdict: soundness.Verdict | None = None  # set on soundness outcomes

    @property
    def blocking(self) -> bool:
        """A failed contract check fails ``xprune check``; a failed soundness check warns."""
        return not self.ok and self.verdict is None and not self.check.endswith("soundness")


def resolve(target: str) -> list[MethodInfo] | list[CheckResult]:
    """A registered method name or wildcard (``'*'``, ``lrp-*``), or a path to a plugin file
    (every plugin class in it, read in a metadata process): the declarations of each, or
    the outcomes that say why the file cannot be checked."""
    path = Path(target)
    if target.endswith(".py") or path.exists():
        if not path.is_file():
            raise PluginError(f"plugin file {target} not found")
        source = f"path:{path.resolve()}"
        try:
            metas = sandbox.read_metadata(source)
        except PluginError as exc:
            return [CheckResult(path.name, "import", False, str(exc))]
        if not metas:
            raise PluginError(f"{target}: defines no Method subclass with a name")
        problems = [CheckResult(m["name"], "metadata", False, "; ".join(m["problems"]))
                    for m in metas if "problems" in m]
        return problems or [MethodInfo(MethodLabel.from_dict({**m["meta"], "source": source}))
                            for m in metas]
    catalogue = plugins.declarations()
    return [catalogue.get(name) for name in catalogue.expand([target])]


def check_class(info: MethodInfo, backbone: str = "smallcnn",
                budget: float = 30.0) -> list[CheckResult]:
    """All checks for one plugin's declarations, on an untrained backbone and the synthetic
    dataset; every run of the plugin is its own scoring process."""
    results = [CheckResult(info.name, "metadata", True)]
    dataset = data.load(data.SYNTHETIC)
    batch = data.reference_batch(dataset, 4, SEED)
    built: dict[str, torch.nn.Module] = {}
    for granularity in info.granularities:
        name = backbone if applicable(backbone, granularity, info.architectures) else "vit"
        if name not in built:
            torch.manual_seed(SEED)
            built[name] = models.build(name, dataset.info.n_channels,
                                       dataset.info.n_classes).eval()
        outcomes = _check_granularity(info, built[name], granularity, batch, budget)
        results += outcomes
        if all(o.ok for o in outcomes):
            results.append(_soundness(info, granularity, budget))
    return results


def _soundness(info: MethodInfo, granularity: str, budget: float) -> CheckResult:
    """The soundness stage on the small trained model, as one outcome."""
    try:
        verdict = soundness.judge(info, granularity, timeout=budget * 2)
    except PluginError as exc:
        return CheckResult(info.name, f"{granularity}: soundness", False, str(exc))
    detail = verdict.message or (
        f"zero-effect units ranked last; largest tie at the minimum "
        f"{100 * verdict.worst_tie:.1f}%" if verdict.zero_effect else
        f"not effect-based: tie check only (largest tie {100 * verdict.worst_tie:.1f}%)")
    return CheckResult(info.name, f"{granularity}: soundness", verdict.ok, detail, verdict)


def _check_granularity(info: MethodInfo, model, granularity, batch, budget) -> list[CheckResult]:
    name = f"{granularity}"
    runs = []
    for _ in range(2):
        try:
            runs.append(sandbox.score(info.source, info.name, model, granularity, batch, SEED,
                                      budget * 2))
        except sandbox.ScoringTimeout as exc:
            return [CheckResult(info.name, f"{name}: budget", False,
                            f"{exc}; still running after {budget * 2:g} s (budget {budget:g} s): "
                            "stopped" if "score()" in str(exc) else str(exc))]
        except PluginError as exc:
            return [CheckResult(info.name, f"{name}: contract", False, str(exc))]
    (first, seconds), (second, _) = runs
    differing = [site for site in first if not torch.equal(first[site], second[site])]
    return [
        CheckResult(info.name, f"{name}: contract", True),
        CheckResult(info.name, f"{name}: deterministic", not differing,
                f"two runs with seed {SEED} differ at site {differing[0]!r}" if differing else ""),
        CheckResult(info.name, f"{name}: budget", seconds <= budget,
                f"took {seconds:.1f} s, over the budget of {budget:g} s" if seconds > budget else
                f"{seconds:.2f} s"),
    ]


def check(target: str, backbone: str = "smallcnn", budget: float = 30.0) -> list[CheckResult]:
    """Resolve ``target`` and check every plugin class it names."""
    out: list[CheckResult] = []
    for item in resolve(target):
        out += [item] if isinstance(item, CheckResult) else check_class(item, backbone, budget)
    return out
