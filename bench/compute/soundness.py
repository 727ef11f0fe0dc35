"""Soundness of a criterion on a small *trained* model: does it rank units by what they do?

Run on the built-in smallcnn trained for a few seconds on the synthetic set, at every
granularity the method declares; attention heads, and methods that do not apply to CNNs
(``lrp-attn``), are judged the same way on the built-in ViT trained on the synthetic set
(three MLP neurons of block 1 and two heads of block 2 made zero-effect):

1. **Zero-effect units.** Four channels of the second conv and two neurons of the hidden
   Linear get their outgoing weights zeroed (they cannot change the output) and their own
   weights scaled by 4 (large weights, large activations). A method that claims to measure
   a unit's effect on the output (``needs_data`` and ``effect_based``) must score every one
   of them no higher than any other unit of its site (ties allowed), at both granularities
   (for weights: the zero-effect units' own weights). Data-free criteria and criteria that
   declare ``effect_based = False`` (activation magnitude) are not subject to it: a large,
   useless unit is exactly what they cannot see. *Signed criteria*: a negative score claims
   that removing the unit lowers the loss (higher means keep), so pruning it before a
   zero-effect unit is right. So when the zero-effect units score at most 0 (a signed
   criterion that sees no effect in them) the units below them all claim to be harmful and
   the check passes; when they score above 0, every unit scored below them is a failure,
   negative or not. For criteria whose scores are never negative (every
   built-in takes an absolute value) this is the rule above exactly.
2. **Ties at the minimum.** On the unmodified model, no site may have more than 1% of its
   units tied at its minimum score (a degenerate criterion, e.g. z+ weight relevance, which
   is exactly 0 for every negative weight). Units with no first-order effect on any logit
   over the reference batch (dead ReLUs, weights reading a dead input) are left out of this
   count: giving them all the same lowest score is correct, not degenerate.

A built-in must pass both; a third-party plugin that fails gets a warning in ``xprune check``
and on its leaderboard page (the verdict travels in every record as ``method.soundness``).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench import plugins
from bench.api import Batch, Method, capture
from bench.compute import baseline, cache, data, models
from bench.compute.scoring import run_method
from bench.compute.units import find_sites, is_attention, scoring_copy
from bench.core import paths
from bench.core.errors import PluginError
from bench.core.spec import BaselineKey
from bench.run.coordinator import SOUNDNESS_CNN, soundness_model

TIE_LIMIT = 0.01
SCALE = 4.0
# site -> (zero-effect units, the consumer whose input weights for them are zeroed)
ZERO_EFFECT = {"4": ((3, 11, 19, 27), "8"), "13": ((5, 40), "15")}
# On the ViT a head's consumer is the attention projection, whose input columns for the head
# are zeroed.
VIT_ZERO_EFFECT = {"blocks.1.mlp.fc1": ((5, 40, 77), "blocks.1.mlp.fc2"),
                   "blocks.2.attn": ((1, 4), "blocks.2.attn.proj")}
SEED = 0


@dataclass(frozen=True)
class Verdict:
    """The soundness of one method at one granularity."""

    method: str
    granularity: str
    zero_effect: bool | None  # None: not subject (data-free or not effect-based)
    worst_tie: float  # largest share of a site's units tied at its minimum
    worst_site: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.zero_effect is not False and self.worst_tie <= TIE_LIMIT

    def summary(self) -> str:
        """One line for records and the leaderboard: ``pass`` or ``fail: reason``."""
        return "pass" if self.ok else f"fail: {self.message}"


def subject_to_zero_effect(cls: type[Method]) -> bool:
    """Whether a method claims to measure each unit's effect on the output."""
    return bool(cls.needs_data) and bool(getattr(cls, "effect_based", True))


@functools.lru_cache(maxsize=4)
def _trained(cache_dir: str | None, key: BaselineKey = SOUNDNESS_CNN) -> nn.Module:
    dataset = data.load(data.SYNTHETIC)
    if cache_dir is None:
        entry = baseline.train(key, dataset)
        model = models.build(key.backbone, 1, dataset.info.n_classes)
        model.load_state_dict(entry["state_dict"])
        return model.eval()
    return baseline.get(key, dataset, Path(cache_dir))[0]


def trained_model(cache_dir: Path | None = None, key: BaselineKey = SOUNDNESS_CNN) -> nn.Module:
    """A private copy of the small trained model (cached per process, and on disk if asked)."""
    return copy.deepcopy(_trained(None if cache_dir is None else str(cache_dir), key))


def zero_effect_table(model: nn.Module) -> dict[str, tuple[tuple[int, ...], str]]:
    """The zero-effect units of a soundness model: ZERO_EFFECT, or VIT_ZERO_EFFECT."""
    return VIT_ZERO_EFFECT if any(is_attention(m) for m in model.modules()) else ZERO_EFFECT


@torch.no_grad()
def with_zero_effect_units(model: nn.Module) -> nn.Module:
    """A copy whose zero-effect units cannot change the output, with 4x larger own weights
    (a head: its q, k and v rows of ``qkv``; its columns of ``proj`` are zeroed)."""
    out = copy.deepcopy(model)
    modules = dict(out.named_modules())
    for site, (units, consumer) in zero_effect_table(model).items():
        idx, own = torch.tensor(units), modules[site]
        if is_attention(own):
            width = own.proj.in_features // own.num_heads
            idx = torch.cat([torch.arange(h * width, (h + 1) * width) for h in units])
            own = own.qkv
            rows = torch.cat([idx + part * width * modules[site].num_heads for part in range(3)])
            own.weight[rows] *= SCALE
        else:
            own.weight[idx] *= SCALE
        modules[consumer].weight[:, idx] = 0.0
    return out


def inert_units(model: nn.Module, granularity: str, batch: Batch) -> dict[str, Tensor]:
    """Per site, True for units with no first-order effect on any logit over ``batch``: every
    image's gradient of every logit at the unit's output (channel) or at the weight is 0."""
    clone = scoring_copy(model)
    sites = find_sites(clone, granularity)
    live = {s.name: torch.zeros(s.shape, dtype=torch.bool) for s in sites}
    with capture(clone, sites) as cap:
        logits = clone(batch.x)
        outputs = [cap.outputs[s.name] for s in sites]
        for k in range(logits.shape[1]):
            wrt = outputs if granularity != "weight" else [s.weight for s in sites]
            grads = torch.autograd.grad(logits[:, k].sum(), wrt, retain_graph=True)
            for site, grad in zip(sites, grads):
                nonzero = grad != 0
                live[site.name] |= (nonzero.transpose(0, 1).flatten(1).any(1)
                                    if granularity != "weight" else nonzero)
    return {name: ~mask for name, mask in live.items()}


def tie_share(scores: Tensor, inert: Tensor | None = None) -> float:
    """Share of the (non-inert) units whose score equals their minimum; a lone minimum is 0."""
    flat = scores.flatten() if inert is None else scores.flatten()[~inert.flatten()]
    if flat.numel() == 0:
        return 0.0
    ties = int((flat == flat.min()).sum())
    return 0.0 if ties == 1 else ties / flat.numel()


def zero_effect_problem(scores: dict[str, Tensor],
                        table: dict[str, tuple[tuple[int, ...], str]] = ZERO_EFFECT) -> str:
    """'' if every zero-effect unit scores no higher than every other unit of its site, units
    with a negative score excepted when the zero-effect units score at most 0 (module docstring)."""
    for site, (units, _) in table.items():
        if site not in scores:  # a head table entry at channel granularity, or the reverse
            continue
        s = scores[site]
        mask = torch.zeros(s.shape[0], dtype=torch.bool)
        mask[list(units)] = True
        dead, alive = s[mask].flatten(), s[~mask].flatten()
        top = dead.max()
        if top <= 0:  # only units scored below 0 (harmful, for a signed criterion) rank lower
            continue
        below = alive < top
        if below.any():
            lowest = float(alive[below].min())
            return (f"site {site}: a zero-effect unit scores {float(top):.3g}, above "
                    f"{int(below.sum())} unit(s) that affect the output (lowest {lowest:.3g})")
    return ""


def judge(cls: type[Method] | Any, granularity: str, cache_dir: Path | None = None,
          timeout: float | None = None) -> Verdict:
    """Run both checks for one method and granularity (PluginError if the plugin fails).

    ``cls`` is a plugin's declarations (``plugins.MethodInfo``: the engine's way, each score
    computed in a scoring process within ``timeout``) or a class imported in this process
    (tests)."""
    dataset = data.load(data.SYNTHETIC)
    batch = data.reference_batch(dataset, 10, SEED)
    isolated = not isinstance(cls, type)
    architectures = cls.architectures if isolated else getattr(cls, "architectures", None)
    key = soundness_model(granularity, architectures)
    model = trained_model(cache_dir, key)

    def scores_of(m: nn.Module) -> dict[str, torch.Tensor]:
        if not isolated:
            return run_method(cls, m, granularity, batch, SEED)[0]
        from bench.compute import sandbox

        return sandbox.score(cls.source, cls.name, m, granularity, batch, SEED,
                             timeout or sandbox.default_score_timeout(key.backbone))[0]

    scores = scores_of(model)
    inert = inert_units(model, granularity, batch)
    worst_site, worst = max(((name, tie_share(s, inert[name])) for name, s in scores.items()),
                            key=lambda item: item[1])
    problems = []
    if worst > TIE_LIMIT:
        problems.append(f"site {worst_site}: {100 * worst:.1f}% of its units that affect the "
                        f"output tie at the minimum score (limit {100 * TIE_LIMIT:g}%)")
    zero_effect = None
    if (cls.label.zero_effect if isolated
            else subject_to_zero_effect(cls)):
        modified = scores_of(with_zero_effect_units(model))
        problem = zero_effect_problem(modified, zero_effect_table(model))
        zero_effect = not problem
        problems += [problem] if problem else []
    return Verdict(cls.name, granularity, zero_effect, worst, worst_site, "; ".join(problems))


def verdict(method: str, granularity: str, cache_dir: Path, timeout: float | None = None) -> str:
    """``pass`` or ``fail: reason`` for a registered method, cached per method version (its
    scores computed in scoring processes, each within ``timeout`` seconds)."""
    cls = plugins.info(method)  # scored in scoring processes: nothing imported here
    path = paths.soundness(method, str(cls.version), granularity, cache_dir)

    def compute() -> dict[str, str]:
        from bench.compute.sandbox import ScoringTimeout

        try:
            return {"verdict": judge(cls, granularity, cache_dir, timeout).summary()}
        except ScoringTimeout:
            raise  # depends on this run's bound: the task fails, nothing is cached
        except PluginError as exc:
            return {"verdict": f"fail: {exc}"}

    return cache.get_or_compute(path, compute)["verdict"]
