"""The statistics behind the leaderboard, with values computed by hand."""

import math

import pytest

from bench.results.stats import block_ranks, friedman, nemenyi_cd, t_interval


def test_t_interval_is_mean_plus_minus_t_times_standard_error():
    low, high = t_interval([1.0, 2.0, 3.0])
    half = 4.302653 * 1.0 / math.sqrt(3)  # t(0.975, df=2) = 4.302653, sd = 1
    assert (low, high) == pytest.approx((2 - half, 2 + half), abs=1e-6)
    assert t_interval([5.0]) is None


def test_block_ranks_give_one_to_the_best_and_share_ties():
    assert block_ranks({"a": 0.2, "b": 0.9, "c": 0.9}) == {"b": 1.5, "c": 1.5, "a": 3.0}


def test_friedman_statistic_matches_the_textbook_formula():
    # 4 blocks x 3 methods; ranks per block: A 1,1,1,2  B 2,2,3,1  C 3,3,2,3
    table = {0: {"A": 0.9, "B": 0.8, "C": 0.7}, 1: {"A": 0.9, "B": 0.6, "C": 0.5},
             2: {"A": 0.8, "B": 0.6, "C": 0.7}, 3: {"A": 0.7, "B": 0.9, "C": 0.6}}
    result = friedman(table)
    assert result.mean_ranks == {"A": 1.25, "B": 2.0, "C": 2.75}
    assert result.methods == ("A", "B", "C")
    # chi2 = 12 / (N k (k+1)) * sum(R_j^2) - 3 N (k+1), with R_j the rank sums 5, 8, 11
    chi2 = 12 / (4 * 3 * 4) * (5**2 + 8**2 + 11**2) - 3 * 4 * 4
    assert result.statistic == pytest.approx(chi2)  # = 4.5
    assert result.p_value == pytest.approx(math.exp(-4.5 / 2))  # chi2 with 2 df: exp(-x/2)
    assert not result.significant and not result.differs("A", "C")
    assert result.critical_difference == pytest.approx(nemenyi_cd(3, 4))


def test_nemenyi_critical_difference_matches_demsar_table():
    # Demšar 2006, Table 5: q_0.05 = 2.343 for k = 3, 2.569 for k = 4
    assert nemenyi_cd(3, 10) == pytest.approx(2.343 * math.sqrt(3 * 4 / 60), abs=2e-3)
    assert nemenyi_cd(4, 10) == pytest.approx(2.569 * math.sqrt(4 * 5 / 60), abs=2e-3)


def test_a_consistent_winner_is_separated_and_alternating_methods_are_not():
    # A always first; B and C swap second place from block to block (mean ranks 1, 2.5, 2.5)
    table = {b: {"A": 0.9, "B": 0.8 if b % 2 else 0.4, "C": 0.5} for b in range(12)}
    result = friedman(table)
    assert result.mean_ranks == {"A": 1.0, "B": 2.5, "C": 2.5}
    assert result.significant and result.p_value < 1e-3
    assert result.differs("A", "B") and result.differs("A", "C") and not result.differs("B", "C")


def test_friedman_refuses_an_incomplete_table():
    with pytest.raises(ValueError, match="complete"):
        friedman({0: {"A": 1.0, "B": 0.5}, 1: {"A": 1.0}})


def test_t_interval_is_clipped_to_the_range_of_the_quantity():
    """Three accuracies 0.27, 0.27, 0.73: the t-interval would reach past 1 (and below 0)."""
    low, high = t_interval([0.27, 0.27, 0.73], bounds=(0.0, 1.0))
    assert (low, high) == (0.0, 1.0)
    unclipped = t_interval([0.27, 0.27, 0.73])
    assert unclipped[0] < 0.0 and unclipped[1] > 1.0


def test_holm_matches_the_step_down_procedure() -> None:
    from bench.results.stats import holm

    # sorted 0.01, 0.03, 0.04: 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    assert holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert holm({"a": 0.6, "b": 0.7}) == {"a": 1.0, "b": 1.0}


def test_paired_tests_against_a_reference() -> None:
    from scipy.stats import wilcoxon

    from bench.results.stats import paired_tests

    diffs = [0.01, 0.02, 0.03, 0.04, 0.05, -0.006]
    table = {i: {"random": 0.5, "lrp": 0.5 + d, "flat": 0.5} for i, d in enumerate(diffs)}
    tests = paired_tests(table, "random")
    assert sorted(tests) == ["flat", "lrp"]
    lrp = tests["lrp"]
    assert (lrp.n, lrp.share_higher) == (6, 5 / 6)
    assert lrp.mean_diff == pytest.approx(sum(diffs) / 6)
    assert lrp.p_value == pytest.approx(float(wilcoxon(diffs).pvalue))
    assert lrp.p_holm == pytest.approx(lrp.p_value)  # the only testable method
    assert tests["flat"].p_value is None and tests["flat"].verdict == "not separated"
    short = paired_tests({i: table[i] for i in range(5)}, "random")
    assert short["lrp"].p_value is None  # below 6 blocks: no test
