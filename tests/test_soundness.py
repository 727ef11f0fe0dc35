"""The soundness stage: exact tie shares, inert units, zero-effect units, and two unsound
fixtures that must be caught (and only warned about by ``xprune check``)."""

from pathlib import Path

import pytest
import torch
from torch import nn

from bench import plugins
from bench.api import Batch
from bench.compute import soundness

UNSOUND = Path(__file__).parent / "fixtures" / "unsound_plugins"


def test_tie_share_counts_units_at_the_minimum():
    assert soundness.tie_share(torch.tensor([0.0, 0.0, 1.0, 2.0])) == 0.5
    assert soundness.tie_share(torch.tensor([0.0, 1.0, 1.0, 2.0])) == 0.0  # a lone minimum
    inert = torch.tensor([True, True, False, False])
    assert soundness.tie_share(torch.tensor([0.0, 0.0, 1.0, 2.0]), inert) == 0.0


def _dead_unit_net() -> tuple[nn.Module, Batch]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].bias[1] = -100.0  # unit 1 never fires
        net[2].bias.fill_(5.0)  # the next layer is always active
    return net, Batch(torch.randn(8, 2), torch.arange(8) % 2, "multi-class", 2)


def test_inert_units_are_dead_units_and_the_weights_around_them():
    net, batch = _dead_unit_net()
    channel = soundness.inert_units(net, "channel", batch)
    assert channel["0"].tolist() == [False, True, False] and not channel["2"].any()
    weight = soundness.inert_units(net, "weight", batch)
    assert weight["0"][1].all() and not weight["0"][[0, 2]].any()  # weights into the dead unit
    assert weight["2"][:, 1].all() and not weight["2"][:, [0, 2]].any()  # weights reading it


def test_zero_effect_units_cannot_change_the_output():
    model = soundness.with_zero_effect_units(soundness.trained_model())
    x = torch.randn(4, 1, 28, 28)
    before = model(x)
    with torch.no_grad():
        for site, (units, _) in soundness.ZERO_EFFECT.items():
            dict(model.named_modules())[site].weight[list(units)] *= -7.0
    assert torch.equal(model(x), before)


@pytest.mark.parametrize("name", ["taylor", "lrp-epsilon", "backtrace"])
def test_effect_based_builtins_rank_zero_effect_units_last(name):
    for granularity in plugins.get(name).cls.granularities:
        verdict = soundness.judge(plugins.get(name).cls, granularity)
        assert verdict.zero_effect is True and verdict.ok, verdict.message


def test_a_degenerate_weight_criterion_is_flagged_for_its_ties():
    (cls,) = plugins.load_file(UNSOUND / "positive_weights.py")
    verdict = soundness.judge(cls, "weight")
    assert verdict.zero_effect is None  # data-free: not subject to the zero-effect check
    assert not verdict.ok and "tie at the minimum score" in verdict.message
    assert verdict.worst_tie > 0.3


def test_a_criterion_blind_to_effect_fails_the_zero_effect_check():
    (cls,) = plugins.load_file(UNSOUND / "loud_units.py")
    verdict = soundness.judge(cls, "channel")
    assert verdict.zero_effect is False and "zero-effect unit scores" in verdict.message
    assert verdict.summary().startswith("fail: site ")


def test_check_warns_but_passes_a_plugin_whose_only_failure_is_soundness(workdir, cli):
    code, out, err = cli("check", str(UNSOUND / "loud_units.py"))
    assert code == 0
    assert "WARN" in out and "warning: loud-units fails the soundness check" in err


SOUND = Path(__file__).parent / "fixtures" / "sound_plugins"


def test_a_signed_criterion_may_rank_harmful_units_below_zero_effect_units():
    table = {"s": ((0,), "c")}
    # zero-effect unit 0 scores 0; unit 1's removal lowers the loss (-0.3): pruning it first is right
    assert soundness.zero_effect_problem({"s": torch.tensor([0.0, -0.3, 0.2, 0.5])}, table) == ""
    # a zero-effect unit scored above 0 gets no exemption: both units below it fail the check
    assert "scores 0.1, above 2 unit(s)" in soundness.zero_effect_problem(
        {"s": torch.tensor([0.1, -0.3, 0.05, 0.5])}, table)
    # an unsigned criterion (scores >= 0) is judged exactly as before
    assert "above 1 unit(s)" in soundness.zero_effect_problem(
        {"s": torch.tensor([0.2, 0.1, 0.3, 0.5])}, table)


def test_a_signed_loss_based_plugin_passes_the_zero_effect_check():
    (cls,) = plugins.load_file(SOUND / "signed_taylor.py")
    model = soundness.with_zero_effect_units(soundness.trained_model())
    batch = soundness.data.reference_batch(soundness.data.load(soundness.data.SYNTHETIC), 10, 0)
    scores, _ = soundness.run_method(cls, model, "channel", batch, 0)
    # the case the rule is for: live units score below the zero-effect units (exactly 0)
    for site, (units, _) in soundness.ZERO_EFFECT.items():
        assert torch.all(scores[site][list(units)] == 0)
    assert any((scores[site] < 0).any() for site in soundness.ZERO_EFFECT)
    verdict = soundness.judge(cls, "channel")
    assert verdict.zero_effect is True, verdict.message
