"""MLflow tracking: one parent run per ``xprune run``, one child run per finished cell, one
child run per baseline (its per-epoch training curve as step metrics).

Only the coordinating process writes (SQLite tolerates one writer). The default store is
``sqlite:///mlflow.db`` in the working directory; ``MLFLOW_TRACKING_URI`` overrides it.
Every child run carries the cell hash as the tag ``xprune.cell_hash`` (a baseline run:
``xprune.baseline_hash``); before logging, the tracker asks which cells already have a run,
so a resumed matrix never logs a cell twice. The parent records who runs it (pid, host,
process start): a later run marks a parent whose coordinator is dead as KILLED.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from bench.core.errors import XPruneError, one_line
from bench.results.provenance import provenance

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///mlflow.db"
CELL_TAG = "xprune.cell_hash"
BASELINE_TAG = "xprune.baseline_hash"
KIND_TAG = "mlflow.experimentKind"  # MLflow 3's UI opens such experiments on their runs
KIND = "custom_model_development"
SOURCE_NAME = "xprune run"


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` or the SQLite file in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def experiment_name(spec_name: str) -> str:
    """The experiment of a spec: namespaced, so it cannot collide on a shared server."""
    return f"xprune/{spec_name}"


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out[prefix] = float(value)


def process_start(pid: int) -> str:
    """The kernel's start time of a process (tells a reused pid apart); '' if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def coordinator_alive(tags: dict[str, str]) -> bool | None:
    """Whether the coordinator a parent run names still runs; None if it ran on another host."""
    if tags.get("xprune.host") != socket.gethostname() or not tags.get("xprune.pid", "").isdigit():
        return None
    pid = int(tags["xprune.pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = tags.get("xprune.process_start", "")
    return not started or process_start(pid) in ("", started)


def _source_tags(git_commit: str) -> dict[str, str]:
    tags = {"mlflow.source.name": SOURCE_NAME, "mlflow.source.type": "LOCAL"}
    if git_commit and git_commit != "unknown":
        tags["mlflow.source.git.commit"] = git_commit.removesuffix("+dirty")
        tags["xprune.git_dirty"] = str(git_commit.endswith("+dirty")).lower()
    return tags


class Tracker:
    """A parent MLflow run for one matrix invocation and its child runs."""

    def __init__(self, experiment: str, run_name: str, params: dict[str, Any],
                 uri: str | None = None, journal: Any = None) -> None:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient

        self.uri = uri or tracking_uri()
        self.journal = journal
        self.started = time.time()
        prov = provenance()
        tags = {"xprune.kind": "matrix", "xprune.pid": str(os.getpid()),
                "xprune.host": socket.gethostname(),
                "xprune.process_start": process_start(os.getpid()),
                **_source_tags(prov["git_commit"]),
                **{f"version.{k}": v for k, v in prov["versions"].items()},
                "version.xprune": prov["xprune_version"]}
        preflight(self.uri)
        try:  # under the lock: a fresh store is created and migrated by one run at a time
            with _store_lock(self.uri), _quiet_store_errors():
                self.client = MlflowClient(tracking_uri=self.uri)
                found = self.client.get_experiment_by_name(experiment)
                self.experiment_id = (found.experiment_id if found else self.client
                                      .create_experiment(experiment, tags={KIND_TAG: KIND}))
                if found and found.tags.get(KIND_TAG) != KIND:
                    self.client.set_experiment_tag(self.experiment_id, KIND_TAG, KIND)
                self.reaped = self.reap_dead_parents()
                parent = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        except Exception as exc:
            reason = one_line(exc, typed=False)
            if "readonly" in reason.lower().replace("-", "").replace(" ", ""):
                raise XPruneError(f"MLflow tracking at {self.uri} is read-only (the database "
                                  "file or its folder cannot be written): give a writable "
                                  "store with MLFLOW_TRACKING_URI") from None
            raise XPruneError(f"MLflow tracking at {self.uri} is unusable: {reason}") from None
        self.parent_id = parent.info.run_id
        if journal is not None:
            journal.add("parent-open", self.parent_id)
        self.client.log_batch(self.parent_id, params=[_param(k, v) for k, v in params.items()])

    def reap_dead_parents(self) -> list[str]:
        """Mark RUNNING parent runs whose coordinator process is gone as KILLED; their ids."""
        reaped = []
        for run in self._search("tags.`xprune.kind` = 'matrix' and attributes.status = 'RUNNING'"):
            if coordinator_alive(run.data.tags) is False:
                self.client.set_tag(run.info.run_id, "xprune.end",
                                    f"coordinator pid {run.data.tags['xprune.pid']} on "
                                    f"{run.data.tags['xprune.host']} died; marked by a later run")
                self.client.set_terminated(run.info.run_id, "KILLED")
                reaped.append(run.info.run_id)
                if self.journal is not None:
                    self.journal.add("parent-closed", run.info.run_id)
        return reaped

    def _search(self, query: str) -> list:
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], query, max_results=1000,
                                           page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def logged_cells(self) -> set[str]:
        """Cell hashes that already have a child run in this experiment."""
        return {run.data.tags[CELL_TAG] for run in self._search(f"tags.`{CELL_TAG}` != ''")}

    def logged_baselines(self) -> set[str]:
        """Baseline hashes that already have a run in this experiment."""
        return {run.data.tags[BASELINE_TAG]
                for run in self._search(f"tags.`{BASELINE_TAG}` != ''")}

    def _child(self, name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={"mlflow.parentRunId": self.parent_id, **tags})
        return run.info.run_id

    def log_cell(self, record: dict[str, Any]) -> str:
        """One child run: coordinates as params, metrics, provenance tags, record artifact."""
        from mlflow.entities import Metric, RunTag

        cell = record["cell"]
        tags = {CELL_TAG: record["cell_hash"], "xprune.status": record["status"],
                "git_commit": record["provenance"]["git_commit"],
                **_source_tags(record["provenance"]["git_commit"])}
        tags |= {f"version.{k}": v for k, v in record["provenance"]["versions"].items()}
        if record["error"]:
            tags["xprune.error"] = record["error"][:5000]
        run_id = self._child(
            f"{cell['dataset']}/{cell['backbone']}/{cell['method']}/{cell['granularity']}"
            f"/{cell['scope']}/{cell['sparsity']:g}/{cell['recovery']}/{cell['seed']}", tags)
        metrics: dict[str, float] = {}
        _flatten("", record["metrics"] or {}, metrics)
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id, metrics=[Metric(k, v, now, 0) for k, v in sorted(metrics.items())],
            params=[_param(k, v) for k, v in cell.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()])
        self.client.log_dict(run_id, record, "record.json")
        self._log_heatmaps(run_id, record)
        self.client.set_terminated(run_id, "FINISHED" if record["status"] == "ok" else "FAILED")
        if self.journal is not None:
            self.journal.add("cell", record["cell_hash"])
        return run_id

    def _log_heatmaps(self, run_id: str, record: dict[str, Any]) -> None:
        """The dense-vs-pruned heatmap picture, for records that keep maps (showcase cells)."""
        block = (record["metrics"] or {}).get("transparency") or {}
        if "maps" not in block:
            return
        import tempfile

        from bench.compute.transparency import heatmap_png, stored_maps

        images, dense, pruned = stored_maps(block)
        with tempfile.TemporaryDirectory() as tmp:
            path = heatmap_png(images, dense, {record["cell"]["sparsity"]: pruned},
                               Path(tmp) / "heatmaps.png")
            self.client.log_artifact(run_id, str(path))

    def log_baseline(self, key: dict[str, Any], entry: dict[str, Any]) -> str:
        """One child run per baseline: its training history as step metrics (one step per
        epoch: ``loss``, ``val.acc``, ``val.auc`` and whatever else each epoch recorded),
        and its final validation and test scores."""
        from mlflow.entities import Metric

        name = f"baseline {key['dataset']}/{key['backbone']}/seed{key['seed']}"
        run_id = self._child(name, {BASELINE_TAG: key["hash"], "xprune.status": "ok"})
        now = int(time.time() * 1000)
        metrics = []
        for i, epoch in enumerate(entry.get("history") or []):
            if not isinstance(epoch, dict):
                continue
            step = epoch.get("epoch", epoch.get("step", i + 1))
            values: dict[str, float] = {}
            _flatten("", {k: v for k, v in epoch.items() if k not in ("epoch", "step")}, values)
            metrics += [Metric(k, v, now, int(step)) for k, v in sorted(values.items())]
        final: dict[str, float] = {}
        _flatten("", {"best_val": entry.get("val"), "test": entry.get("test"),
                      "train_seconds": entry.get("seconds")}, final)
        metrics += [Metric(k, v, now, 0) for k, v in sorted(final.items())]
        for start in range(0, len(metrics), 900):  # MLflow takes at most 1000 per batch
            self.client.log_batch(run_id, metrics=metrics[start:start + 900])
        self.client.log_batch(run_id, params=[_param(k, v) for k, v in key.items()])
        self.client.set_terminated(run_id, "FINISHED")
        if self.journal is not None:
            self.journal.add("baseline", key["hash"])
        return run_id

    def log_summary(self, summary: dict[str, float], table: str) -> None:
        """The parent's summary metrics and the rendered summary table (``summary.md``)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.parent_id, metrics=[
            Metric(k, float(v), now, 0) for k, v in sorted(summary.items())])
        self.client.log_text(self.parent_id, table, "summary.md")

    def finish(self, status: str = "FINISHED") -> None:
        """End the parent run (FINISHED, FAILED or KILLED)."""
        self.client.set_terminated(self.parent_id, status)
        if self.journal is not None:
            self.journal.add("parent-closed", self.parent_id)


# A tracking server that does not answer is refused in seconds; MLflow's own HTTP retries
# (7 with exponential back-off: about 260 s) are bounded unless the user set them.
CONNECT_SECONDS = 5.0
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores and in-memory)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def preflight(uri: str) -> None:
    """Refuse, in seconds and in one line, a tracking server that cannot be reached and a
    SQLite store that cannot be written, before any work starts."""
    import socket as sockets
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with sockets.create_connection((parts.hostname or "localhost", port),
                                           timeout=CONNECT_SECONDS):
                pass
        except OSError as exc:
            reason = exc.strerror or one_line(exc, typed=True)
            raise XPruneError(f"MLflow tracking server at {uri} cannot be reached ({reason}); "
                              "start it or set MLFLOW_TRACKING_URI") from None
    path = _sqlite_path(uri)
    if path is not None:
        folder = path.parent if str(path.parent) else Path(".")
        if (path.exists() and not os.access(path, os.W_OK)) or (
                folder.is_dir() and not os.access(folder, os.W_OK)):
            raise XPruneError(f"MLflow tracking at {uri} is read-only (the database file or "
                              "its folder cannot be written): give a writable store with "
                              "MLFLOW_TRACKING_URI")


class _store_lock:
    """An exclusive lock beside a SQLite store while MLflow creates or migrates it: two runs
    starting on a fresh store at once would otherwise race the migration (one dies)."""

    def __init__(self, uri: str) -> None:
        path = _sqlite_path(uri)
        self.path = None if path is None else path.with_name(path.name + ".xprune-lock")
        self.fh: Any = None

    def __enter__(self) -> _store_lock:
        import fcntl

        if self.path is not None:
            try:
                self.fh = open(self.path, "a")
            except OSError:  # a read-only folder: MLflow's own error says why
                return self
            fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.fh.close()


class _quiet_store_errors:
    """MLflow logs a store's failure with a long SQLAlchemy traceback before raising it; the
    raised error is reported in one line instead."""

    NAMES = ("mlflow.store.db.utils", "mlflow.store.tracking.sqlalchemy_store", "alembic",
             "sqlalchemy")

    def __enter__(self) -> None:
        self.levels = {n: logging.getLogger(n).level for n in self.NAMES}
        for name in self.NAMES:
            logging.getLogger(name).setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


def _param(key: str, value: Any):
    from mlflow.entities import Param

    return Param(key, str(value)[:6000])
