"""The task boundary: frozen task values carrying their keys, a typed Outcome, dispatch by
type, timing as a property of the task type, and both crossing a real worker's pipe."""

import multiprocessing as mp
import pickle

import pytest

from bench.compute import runner
from bench.core.axes import Granularity
from bench.core.errors import DataError, XPruneError, one_line
from bench.core.spec import BaselineKey, Cell
from bench.core.tasks import ComputeScores, JudgeSoundness, Outcome, RunCell, TrainBaseline
from bench.run.executors import LocalExecutor

CELL = Cell("synthetic", 28, "smallcnn", "random", "1", "channel", "layer", 0.5, "bnrecal",
            0, 1, 2, 0, transparency=False)
TASKS = [TrainBaseline(CELL.baseline), JudgeSoundness("random", Granularity.CHANNEL),
         ComputeScores(CELL.scores), RunCell(CELL)]


def test_each_task_carries_its_key_and_names_itself():
    assert [t.id for t in TASKS] == [CELL.baseline.hash, "random-channel", CELL.scores.hash,
                                     CELL.hash]
    assert [t.kind for t in TASKS] == ["baseline", "soundness", "scores", "cell"]
    assert [t.label for t in TASKS] == ["train synthetic/smallcnn", "soundness random/channel",
                                        "score synthetic/smallcnn/random/channel", CELL.label()]


def test_timing_is_a_property_of_the_task_type():
    """--cell-timeout bounds everything that runs a plugin (its verdict, its scores, its
    cells), never baseline training."""
    assert [type(t).timed for t in TASKS] == [False, True, True, True]


def test_tasks_and_outcomes_pickle_as_they_are():
    outcome = Outcome(True, 1.5, threads=2, device={"kind": "cpu", "gpu": None},
                      determinism={"device": "cpu"}, result={"acc": 0.5})
    for value in [*TASKS, outcome, Outcome.failure("boom", 3.0)]:
        assert pickle.loads(pickle.dumps(value)) == value
    assert Outcome.failure("boom") == Outcome(False, 0.0, "boom")


def test_dispatch_is_by_task_type():
    for task in TASKS:
        assert runner.perform.dispatch(type(task)) is not runner.perform.dispatch(object)
    assert len({runner.perform.dispatch(type(t)) for t in TASKS}) == 4
    failed = runner.execute("not a task", None)
    assert (failed.ok, failed.error) == (False, "TypeError: not a task: str")


def test_a_task_that_raises_is_a_one_line_failed_outcome(tmp_path):
    missing = TrainBaseline(BaselineKey("nosuchmnist", 28, "smallcnn", 0, 1))
    outcome = runner.execute(missing, tmp_path)
    assert not outcome.ok and outcome.error.startswith("unknown dataset 'nosuchmnist'")
    assert outcome.result is None and outcome.seconds >= 0


def test_tasks_and_outcomes_cross_a_real_worker_pipe(tmp_path):
    """Through LocalExecutor's spawned worker: a baseline is trained and scored, an unknown
    method fails in one line, and each outcome comes back typed with its task."""
    key = BaselineKey("synthetic", 28, "smallcnn", 0, 1)
    scores = Cell(**{**CELL.__dict__, "epochs": 1}).scores
    tasks = [TrainBaseline(key), ComputeScores(scores),
             JudgeSoundness("nosuch", Granularity.CHANNEL)]
    done: list = []
    with LocalExecutor(tmp_path / "cache", workers=1) as executor:
        executor.run(tasks, lambda task, outcome: done.append((task, outcome)))
    assert [task for task, _ in done] == tasks
    (_, trained), (_, scored), (_, judged) = done
    assert trained.ok and set(trained.result) >= {"acc", "auc", "bal_acc"}
    assert trained.threads >= 1 and trained.device == {"kind": "cpu", "gpu": None}
    assert scored.ok and isinstance(scored.result, float)
    assert not judged.ok and judged.error.startswith("unknown method 'nosuch'")
    assert all(isinstance(outcome, Outcome) for _, outcome in done)


def test_outcomes_survive_a_spawned_pipe():
    ctx = mp.get_context("spawn")
    sender, receiver = ctx.Pipe()
    outcome = Outcome(True, 0.25, threads=1, result={"tie_share": 0.0})
    sender.send(outcome)
    assert receiver.recv() == outcome


@pytest.mark.parametrize("exc, typed, line", [
    (ValueError("bad\nmore"), None, "ValueError: bad"),
    (DataError("x: missing\ndetail"), None, "x: missing"),
    (XPruneError(""), None, "XPruneError"),
    (RuntimeError("  "), True, "RuntimeError"),
    (OSError("disk full"), False, "disk full"),
    (DataError("shown"), True, "DataError: shown"),
])
def test_one_line(exc, typed, line):
    assert one_line(exc, typed) == line
