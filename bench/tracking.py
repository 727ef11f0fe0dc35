"""MLflow tracking: one parent run per ``xprune run``, one child run per finished cell.

Only the coordinating process writes (SQLite tolerates one writer). The default store is
``sqlite:///mlflow.db`` in the working directory; ``MLFLOW_TRACKING_URI`` overrides it.
Every child run carries the cell hash as the tag ``xprune.cell_hash``; before logging, the
tracker asks which cells already have a run, so a resumed matrix never logs a cell twice.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .errors import XPruneError

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///mlflow.db"
CELL_TAG = "xprune.cell_hash"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out[prefix] = float(value)


class Tracker:
    """A parent MLflow run for one matrix invocation and its child runs."""

    def __init__(self, experiment: str, run_name: str, params: dict[str, Any],
                 uri: str | None = None) -> None:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient

        self.uri = uri or tracking_uri()
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = (found.experiment_id if found
                                  else self.client.create_experiment(experiment))
            parent = self.client.create_run(self.experiment_id, run_name=run_name,
                                            tags={"xprune.kind": "matrix"})
        except Exception as exc:
            raise XPruneError(f"MLflow tracking at {self.uri} is unusable: "
                              f"{str(exc).splitlines()[0]}") from None
        self.parent_id = parent.info.run_id
        self.client.log_batch(self.parent_id, params=[
            _param(k, v) for k, v in params.items()])

    def logged_cells(self) -> set[str]:
        """Cell hashes that already have a child run in this experiment."""
        hashes: set[str] = set()
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], f"tags.`{CELL_TAG}` != ''",
                                           max_results=1000, page_token=token)
            hashes |= {run.data.tags[CELL_TAG] for run in page}
            token = page.token
            if not token:
                return hashes

    def log_cell(self, record: dict[str, Any]) -> str:
        """One child run: coordinates as params, metrics, provenance tags, record artifact."""
        from mlflow.entities import Metric, RunTag

        cell = record["cell"]
        tags = {"mlflow.parentRunId": self.parent_id, CELL_TAG: record["cell_hash"],
                "xprune.status": record["status"], "git_commit":
                record["provenance"]["git_commit"]}
        tags |= {f"version.{k}": v for k, v in record["provenance"]["versions"].items()}
        if record["error"]:
            tags["xprune.error"] = record["error"][:5000]
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=(
            f"{cell['dataset']}/{cell['backbone']}/{cell['method']}/{cell['granularity']}"
            f"/{cell['scope']}/{cell['sparsity']:g}/{cell['recovery']}/{cell['seed']}"))
        run_id = run.info.run_id
        metrics: dict[str, float] = {}
        _flatten("", record["metrics"] or {}, metrics)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, 0, 0) for k, v in sorted(metrics.items())],
            params=[_param(k, v) for k, v in cell.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items() if k != "mlflow.parentRunId"],
        )
        self.client.log_dict(run_id, record, "record.json")
        self.client.set_terminated(run_id, "FINISHED" if record["status"] == "ok" else "FAILED")
        return run_id

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.parent_id, status)


def _param(key: str, value: Any):
    from mlflow.entities import Param

    return Param(key, str(value)[:6000])
