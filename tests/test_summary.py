"""Leaderboard math on constructed records (tests/recordfactory.py), with exact numbers."""

from __future__ import annotations

import math

import pytest
from recordfactory import curve, make_record

from bench.results.stats import block_ranks
from bench.results.summary import (
    compare,
    curve_area,
    pareto_front,
    setting_key,
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
    assert block_ranks({"a": 0.9, "b": 0.8, "c": 0.9, "d": 0.1}) == {"a": 1.5, "c": 1.5, "b": 3, "d": 4}
    assert block_ranks({}) == {}


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


def test_comparisons_are_per_granularity_over_complete_settings() -> None:
    recs = []
    # channel: three methods in datasets a and b; a fourth method only in a -> left out
    for dataset, accs in (("a", (0.9, 0.8, 0.7)), ("b", (0.8, 0.9, 0.6))):
        for method, acc in zip(("taylor", "magnitude", "random"), accs):
            recs += curve({0.5: acc}, method=method, dataset=dataset)
    recs += curve({0.5: 0.95}, method="gradient", dataset="a")
    # weight: two methods in a and b; dataset c has only one of them -> excluded block
    for dataset in ("a", "b"):
        recs += curve({0.5: 0.9}, method="taylor", granularity="weight", dataset=dataset)
        recs += curve({0.5: 0.7}, method="random", granularity="weight", dataset=dataset)
    recs += curve({0.5: 0.9}, method="taylor", granularity="weight", dataset="c")
    recs += [make_record(status="failed", method="taylor", dataset="b")]
    settings, comparisons, failed = summarize(recs)
    assert failed == 1 and len(settings) == 5
    channel, weight = comparisons
    assert channel.granularity == "channel" and weight.granularity == "weight"
    assert channel.significance.methods == ("magnitude", "taylor", "random")
    assert channel.significance.mean_ranks == {"taylor": 1.5, "magnitude": 1.5, "random": 3.0}
    assert channel.left_out == ("gradient",) and len(channel.blocks) == 2
    assert channel.per_dataset["random"] == {"a": 3.0, "b": 3.0}
    assert weight.significance.methods == ("taylor", "random") and len(weight.blocks) == 2
    assert weight.significance.p_value is None  # two methods: Friedman needs at least three
    assert [k.dataset for k in weight.excluded] == ["c"]
    assert compare([]) == []


def test_collapsed_points_are_counted_per_row() -> None:
    recs = (curve({0.3: 0.8, 0.6: 0.4}, method="random", bal_acc=0.34)
            + curve({0.3: 0.8, 0.6: 0.7}, method="taylor"))
    rows = {r.method: r for r in summarize_setting(recs).rows}
    assert rows["random"].collapsed == 2 and rows["random"].points[0].collapsed == 1
    assert rows["taylor"].collapsed == 0


def test_area_interval_is_the_t_interval_of_per_seed_areas() -> None:
    recs = []
    for seed, accs in enumerate(((0.9, 0.7), (0.8, 0.6), (0.7, 0.5))):
        recs += curve(dict(zip((0.2, 0.8), accs)), method="taylor", seed=seed)
    row = summarize_setting(recs).rows[0]
    # per-seed areas 0.8, 0.7, 0.6: mean 0.7, sd 0.1, t(0.975, 2) = 4.302653
    assert row.area.mean == pytest.approx(0.7)
    assert row.area.ci == pytest.approx((0.7 - 4.302653 * 0.1 / math.sqrt(3),
                                         0.7 + 4.302653 * 0.1 / math.sqrt(3)), abs=1e-6)
    # accuracies 0.9, 0.8, 0.7: the interval's upper end (1.048) is clipped to 1
    assert row.points[0].acc.ci == pytest.approx((0.8 - 4.302653 * 0.1 / math.sqrt(3), 1.0),
                                                 abs=1e-6)


def test_schema_1_records_are_summarised_with_what_they_have() -> None:
    row = summarize_setting(curve({0.5: 0.9}, schema=1)).rows[0]
    point = row.points[0]
    assert point.acc.mean == 0.9 and point.mac_reduction.mean == pytest.approx(4.0)
    assert point.bal_acc is None and point.collapsed is None and row.collapsed is None
    assert point.speedup_b64 is None and point.latency_b1 is None


def test_versions_are_separate_rows() -> None:
    recs = curve({0.5: 0.9}, method="magnitude") + curve({0.5: 0.8}, method="magnitude", version="2")
    rows = summarize_setting(recs).rows
    assert [(r.method, r.version, r.rank) for r in rows] == [("magnitude", "1", 1), ("magnitude", "2", 2)]


def test_auc_area_dense_auc_and_dense_latency_are_exact() -> None:
    recs = []
    for seed, aucs in enumerate(((0.9, 0.7), (0.8, 0.6))):
        recs += [make_record(acc=0.8, auc=auc, sparsity=s, seed=seed, method="taylor")
                 for s, auc in zip((0.2, 0.8), aucs)]
    setting = summarize_setting(recs)
    row = setting.rows[0]
    # per-seed AUC areas 0.8 and 0.7: mean 0.75, sd 0.0707, t(0.975, 1) = 12.7062
    assert row.auc_area.mean == pytest.approx(0.75) and row.auc_area.n == 2
    assert row.auc_area.ci == pytest.approx((0.75 - 12.706205 * 0.05, 1.0), abs=1e-6)  # clipped
    assert setting.dense_auc.mean == 0.97 and setting.dense_auc.n == 2  # one per baseline
    # recordfactory: dense latency 40 ms at batch 64 in every cell
    assert setting.dense_latency_b64 == 40.0


def test_auc_area_is_none_when_a_point_lacks_auc_and_schema_1_has_no_latency() -> None:
    setting = summarize_setting(curve({0.2: 0.9, 0.8: 0.7}, auc=None))
    assert setting.rows[0].auc_area is None and setting.dense_auc.mean == 0.97
    old = summarize_setting(curve({0.5: 0.9}, schema=1))
    assert old.dense_latency_b64 is None and old.rows[0].auc_area.mean == 0.9


def _collapse_records() -> list[dict]:
    """Random pruning collapses to the majority class (ACC 0.70, balanced accuracy at chance
    1/3); the two criteria keep a working model that scores less ACC."""
    recs = []
    for seed in (0, 1, 2):
        d = seed / 200
        recs += curve({0.3: 0.70, 0.6: 0.70}, method="random", seed=seed, bal_acc=0.34)
        recs += curve({0.3: 0.66 + d, 0.6: 0.64 + d}, method="taylor", seed=seed,
                      bal_acc=0.62 + d)
        recs += curve({0.3: 0.62 + d, 0.6: 0.60 + d}, method="magnitude", seed=seed,
                      bal_acc=0.55 + d)
    return recs


def test_collapsed_random_wins_on_acc_and_loses_on_balanced_accuracy() -> None:
    recs = _collapse_records()
    by_acc = summarize_setting(recs, "acc")
    by_bal = summarize_setting(recs, "bal_acc")
    assert [(r.method, r.rank) for r in by_acc.rows] == [
        ("random", 1.0), ("taylor", 2.0), ("magnitude", 3.0)]
    assert [(r.method, r.rank) for r in by_bal.rows] == [
        ("taylor", 1.0), ("magnitude", 2.0), ("random", 3.0)]
    random_bal = next(r for r in by_bal.rows if r.method == "random")
    assert random_bal.area.mean == pytest.approx(0.34) and by_bal.at_floor(random_bal.area.mean)
    assert by_bal.chance == pytest.approx(1 / 3) and by_bal.floor == pytest.approx(1 / 3)
    # the rows carry all three areas whatever the ranking metric
    assert random_bal.areas["acc"].mean == pytest.approx(0.70)
    assert by_acc.rows[0].areas["bal_acc"].mean == pytest.approx(0.34)
    _, (acc_cmp,), _ = summarize(recs, metric="acc")
    _, (bal_cmp,), _ = summarize(recs, metric="bal_acc")
    assert acc_cmp.significance.mean_ranks == {"random": 1.0, "taylor": 2.0, "magnitude": 3.0}
    assert bal_cmp.significance.mean_ranks == {"taylor": 1.0, "magnitude": 2.0, "random": 3.0}


def test_best_is_one_method_only_when_the_runner_up_is_separated() -> None:
    setting = summarize_setting(_collapse_records(), "bal_acc")
    # taylor 62.5 [61.3-63.7] vs magnitude 55.5 [54.3-56.7]: separated
    assert [r.method for r in setting.leaders] == ["taylor"]
    close = []
    for seed, (a, b) in enumerate([(0.80, 0.78), (0.84, 0.80)]):
        close += curve({0.5: a}, method="taylor", seed=seed)  # 82 [56.6-100]
        close += curve({0.5: b}, method="magnitude", seed=seed)  # 79 [66.3-91.7]: overlaps
    assert [r.method for r in summarize_setting(close, "bal_acc").leaders] == ["taylor", "magnitude"]
    one_seed = curve({0.5: 0.9}, method="taylor") + curve({0.5: 0.5}, method="magnitude")
    assert len(summarize_setting(one_seed).leaders) == 2  # one seed separates nothing


def test_a_metric_the_records_lack_leaves_rows_unranked() -> None:
    setting = summarize_setting(curve({0.5: 0.9}, schema=1), "bal_acc")
    (row,) = setting.rows
    assert row.area is None and row.rank is None and not row.complete
    assert row.areas["acc"].mean == pytest.approx(0.9) and setting.dense is None
    with pytest.raises(ValueError, match="unknown metric"):
        summarize_setting(curve({0.5: 0.9}), "f1")


def test_majority_share_of_a_binary_task_is_solved_from_the_dense_metrics() -> None:
    from bench.results.summary import majority_share

    record = make_record(dataset="synthetic")
    # 62.5% positives: ACC = 0.625 * sens + 0.375 * spec
    record["dataset"].update(task="binary-class", flag="not-a-medmnist-flag")
    record["metrics"]["dense"].update(sens=0.9, spec=0.6, acc=0.625 * 0.9 + 0.375 * 0.6)
    assert majority_share(record) == pytest.approx(0.625)
    record["dataset"]["task"] = "multi-class"
    assert majority_share(record) is None  # neither the file nor a binary task


def test_records_of_two_protocols_are_two_settings() -> None:
    old = make_record(schema=2, sparsity=0.3)
    new = make_record(sparsity=0.3)
    keys = {setting_key(old), setting_key(new)}
    assert [k.protocol for k in sorted(keys)] == [2, 3]
    assert sorted(k.slug for k in keys) == ["synthetic-28-smallcnn-channel-layer-bnrecal-e10-r10-m0",
                                            "synthetic-28-smallcnn-channel-layer-bnrecal-e10-r10-m0-p2"]
