"""Leaderboard math on constructed records (tests/recordfactory.py), with exact numbers."""

from __future__ import annotations

import math

import pytest
from recordfactory import curve, make_record

from bench.summary import (
    curve_area,
    mean_ranks,
    pareto_front,
    rank,
    summarize,
    summarize_setting,
    within_one_point,
)


def test_curve_area_is_trapezoid_normalised_by_span() -> None:
    # (0.2->0.9, 0.5->0.8, 0.8->0.5): 0.3*(0.85) + 0.3*(0.65) = 0.45, span 0.6 -> 0.75
    assert curve_area([0.2, 0.5, 0.8], [0.9, 0.8, 0.5]) == pytest.approx(0.75, abs=1e-12)
    # order does not matter; a flat curve has its own height as area
    assert curve_area([0.8, 0.2, 0.5], [0.5, 0.9, 0.8]) == pytest.approx(0.75, abs=1e-12)
    assert curve_area([0.1, 0.9], [0.7, 0.7]) == pytest.approx(0.7)
    assert curve_area([0.5], [0.6]) == 0.6
    with pytest.raises(ValueError):
        curve_area([], [])


def test_within_one_point_takes_largest_qualifying_sparsity() -> None:
    xs, dense = [0.2, 0.5, 0.8], 0.95
    assert within_one_point(xs, [0.95, 0.94, 0.80], dense) == 0.5  # exactly 1 point down counts
    assert within_one_point(xs, [0.939, 0.90, 0.80], dense) is None
    assert within_one_point(xs, [0.96, 0.96, 0.949], dense) == 0.8


def test_pareto_front_minimises_cost_and_maximises_accuracy() -> None:
    points = [(10, 0.9), (5, 0.85), (5, 0.80), (2, 0.5), (8, 0.7), (1, 0.5)]
    # (5,0.80) is beaten by (5,0.85); (8,0.7) by (5,0.85); (2,0.5) by (1,0.5)
    assert pareto_front(points) == [5, 1, 0]
    assert pareto_front([(1, 1.0), (1, 1.0)]) == [0, 1]  # equal points do not dominate


def test_rank_averages_ties() -> None:
    assert rank({"a": 0.9, "b": 0.8, "c": 0.9, "d": 0.1}) == {"a": 1.5, "c": 1.5, "b": 3, "d": 4}
    assert rank({}) == {}


def _setting_records() -> list[dict]:
    recs = []
    # magnitude: seeds 0 and 1; random: seed 0 and 1; all at 0.2/0.5/0.8
    recs += curve({0.2: 0.95, 0.5: 0.90, 0.8: 0.80}, method="magnitude", seed=0, dense_acc=0.96)
    recs += curve({0.2: 0.93, 0.5: 0.88, 0.8: 0.70}, method="magnitude", seed=1, dense_acc=0.94)
    recs += curve({0.2: 0.90, 0.5: 0.60, 0.8: 0.30}, method="random", seed=0, dense_acc=0.96)
    recs += curve({0.2: 0.92, 0.5: 0.62, 0.8: 0.34}, method="random", seed=1, dense_acc=0.94)
    return recs


def test_setting_aggregates_seeds_exactly() -> None:
    setting = summarize_setting(_setting_records())
    assert setting.sparsities == (0.2, 0.5, 0.8)
    assert setting.dense.mean == pytest.approx(0.95) and setting.dense.n == 2
    mag, rnd = setting.rows
    assert (mag.method, mag.rank, rnd.method, rnd.rank) == ("magnitude", 1, "random", 2)
    p = mag.points[1]
    assert p.sparsity == 0.5 and p.acc.mean == pytest.approx(0.89)
    assert p.acc.std == pytest.approx(math.sqrt(2 * 0.01 ** 2))  # stdev of (0.90, 0.88)
    assert p.acc.seeds == (0, 1) and len(p.acc.cells) == 2
    # mean curve 0.94, 0.89, 0.75 -> (0.3*0.915 + 0.3*0.82)/0.6 = 0.8675
    assert mag.area.mean == pytest.approx(0.8675)
    # per-seed areas: seed0 (0.925+0.85)/2=0.8875, seed1 (0.905+0.79)/2=0.8475
    assert mag.area.std == pytest.approx(statistics_stdev([0.8875, 0.8475]))
    assert mag.area.n == 2 and len(mag.area.cells) == 6
    # dense per row 0.95; mean acc 0.94 at 0.2 is within one point, 0.89 is not
    assert mag.within_one_point == 0.2 and rnd.within_one_point is None
    assert [r.method for r in setting.best] == ["magnitude"]


def statistics_stdev(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def test_single_seed_has_no_spread_and_missing_auc_is_none() -> None:
    setting = summarize_setting(curve({0.5: 0.9}, auc=None))
    row = setting.rows[0]
    assert row.points[0].acc.std is None and row.points[0].acc.n == 1
    assert row.points[0].auc is None
    assert row.area.mean == 0.9 and row.area.std is None


def test_incomplete_rows_are_not_ranked() -> None:
    recs = curve({0.2: 0.9, 0.8: 0.7}, method="magnitude") + curve({0.2: 0.95}, method="random")
    setting = summarize_setting(recs)
    by_name = {r.method: r for r in setting.rows}
    assert by_name["magnitude"].complete and by_name["magnitude"].rank == 1
    assert not by_name["random"].complete and by_name["random"].rank is None
    assert setting.rows[-1].method == "random"  # unranked rows sort last


def test_pareto_points_are_attached_to_rows() -> None:
    recs = (curve({0.2: 0.9, 0.8: 0.7}, method="magnitude")
            + curve({0.2: 0.8, 0.8: 0.75}, method="random"))
    setting = summarize_setting(recs)
    by_name = {r.method: r for r in setting.rows}
    # same MACs at equal sparsity: magnitude wins at 0.2, random at 0.8
    assert by_name["magnitude"].pareto == (0.2,) and by_name["random"].pareto == (0.8,)


def test_mean_rank_weights_datasets_equally_and_failed_are_counted() -> None:
    recs = []
    # dataset A, two backbones: magnitude 1st then 2nd; dataset B: magnitude 1st
    recs += curve({0.5: 0.9}, method="magnitude", dataset="a", backbone="vgg")
    recs += curve({0.5: 0.8}, method="random", dataset="a", backbone="vgg")
    recs += curve({0.5: 0.7}, method="magnitude", dataset="a", backbone="resnet18")
    recs += curve({0.5: 0.8}, method="random", dataset="a", backbone="resnet18")
    recs += curve({0.5: 0.9}, method="magnitude", dataset="b")
    recs += curve({0.5: 0.8}, method="random", dataset="b")
    recs += [make_record(status="failed", method="taylor", dataset="b")]
    settings, overall, failed = summarize(recs)
    assert failed == 1 and len(settings) == 3
    mag, rnd = overall
    assert (mag.method, mag.per_dataset, mag.mean, mag.settings) == \
        ("magnitude", {"a": 1.5, "b": 1.0}, 1.25, 3)
    assert (rnd.method, rnd.per_dataset, rnd.mean) == ("random", {"a": 1.5, "b": 2.0}, 1.75)
    assert mean_ranks([]) == []


def test_versions_are_separate_rows() -> None:
    recs = curve({0.5: 0.9}, method="magnitude") + curve({0.5: 0.8}, method="magnitude", version="2")
    rows = summarize_setting(recs).rows
    assert [(r.method, r.version, r.rank) for r in rows] == [("magnitude", "1", 1), ("magnitude", "2", 2)]
