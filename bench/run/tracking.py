"""MLflow tracking: one parent run per ``xprune run``, one child run per finished cell, one
child run per baseline (its per-epoch training curve as step metrics, its weights as a logged
PyTorch model, its dataset as a run input), and per setting a run whose children are its
methods' curves (balanced accuracy, AUC and accuracy at step = round(sparsity x 100), so the
UI charts a metric against sparsity).

Runs carry their measured times: a cell's run starts ``provenance.seconds`` before its record
was written and ends then; a baseline's spans its training (ending when its cache entry was
written). Every run has a description (``mlflow.note.content``).

Only the coordinating process writes (SQLite tolerates one writer), and in it one thread: a
cell's run is queued to a writer thread (logging one costs 60-200 ms on a busy two-core
machine, measured by ``benchmarks/tracking_cost.py``, which the coordinator would otherwise
spend between cells); every other call waits for the queue to drain first, and ``finish``
drains it. The default store is ``sqlite:///mlflow.db`` in the working directory;
``MLFLOW_TRACKING_URI`` overrides it.
Every child run carries the cell hash as the tag ``xprune.cell_hash`` (a baseline run:
``xprune.baseline_hash``); before logging, the tracker asks which cells already have a run,
so a resumed matrix never logs a cell twice. The parent records who runs it (pid, host,
process start): a later run marks a parent whose coordinator is dead as KILLED.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
from pathlib import Path
from typing import Any

from bench.core.errors import XPruneError, one_line
from bench.results.provenance import provenance

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///mlflow.db"
CELL_TAG = "xprune.cell_hash"
BASELINE_TAG = "xprune.baseline_hash"
KIND_TAG = "mlflow.experimentKind"  # the experiment's type: machine learning, not GenAI
KIND = "custom_model_development"
NOTE_TAG = "mlflow.note.content"  # a run's description in the UI (Markdown)
SOURCE_NAME = "xprune run"
# MLflow 3.17's UI takes the experiment type from its GenAI / machine-learning switch (the
# ``workflowType`` query parameter, else the browser's last choice, GenAI by default), not
# from the tag: an experiment opens on its runs only through this query.
UI_QUERY = "workflowType=machine_learning"
CURVE_METRICS = ("bal_acc", "auc", "acc")  # bench.results.summary.METRICS, primary first
SYNTHETIC_SPLITS = {"train": 600, "val": 150, "test": 300}  # bench.compute.data._synthetic


def ui_url(experiment_id: str, base: str = "http://127.0.0.1:5000") -> str:
    """The address of an experiment's runs in ``mlflow ui`` (opened as machine learning)."""
    return f"{base}/#/experiments/{experiment_id}/runs?{UI_QUERY}"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _f3(value: Any) -> str:
    """A fraction as printed in a run's description (the metric itself keeps every digit)."""
    return "–" if value is None else f"{value:.3f}"


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
                "version.xprune": prov["xprune_version"],
                NOTE_TAG: f"One `xprune run` of the {run_name} spec, running; its summary "
                          "replaces this when it ends."}
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
        self.source = _source_tags(prov["git_commit"])  # for the runs the coordinator derives
        if journal is not None:
            journal.add("parent-open", self.parent_id)
        self.client.log_batch(self.parent_id, params=[_param(k, v) for k, v in params.items()])
        self._pending: queue.Queue = queue.Queue()
        self._failure: BaseException | None = None
        self._writer = threading.Thread(target=self._write_queued, name="xprune-mlflow",
                                        daemon=True)
        self._writer.start()

    def _write_queued(self) -> None:
        """The writer thread: log queued cell records until told to stop (None); after a
        failure it drops the rest (a later run logs them from their records)."""
        while True:
            record = self._pending.get()
            try:
                if record is None:
                    return
                if self._failure is None:
                    self.write_cell(record)
            except Exception as exc:  # raised to the coordinator by the next flush
                self._failure = exc
            finally:
                self._pending.task_done()

    def flush(self) -> None:
        """Wait until every queued cell is logged; raise the writer's failure, if any."""
        self._pending.join()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

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
        self.flush()
        return {run.data.tags[CELL_TAG] for run in self._search(f"tags.`{CELL_TAG}` != ''")}

    def logged_baselines(self) -> set[str]:
        """Baseline hashes that already have a run in this experiment."""
        self.flush()
        return {run.data.tags[BASELINE_TAG]
                for run in self._search(f"tags.`{BASELINE_TAG}` != ''")}

    def _child(self, name: str, tags: dict[str, str], start_ms: int | None = None,
               parent: str | None = None) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name, start_time=start_ms,
                                     tags={"mlflow.parentRunId": parent or self.parent_id,
                                           **tags})
        return run.info.run_id

    def log_cell(self, record: dict[str, Any]) -> None:
        """Queue a finished cell's run for the writer thread (returns at once)."""
        if self._failure is not None:
            self.flush()
        self._pending.put(record)

    def write_cell(self, record: dict[str, Any]) -> str:
        """One child run over the cell's measured time: coordinates as params, metrics,
        provenance tags, a description, the dataset as input, the record as artifact."""
        from mlflow.entities import Metric, RunTag

        from bench.run.report import record_millis

        cell = record["cell"]
        start_ms, end_ms = record_millis(record) or (_ms(time.time()),) * 2
        tags = {CELL_TAG: record["cell_hash"], "xprune.status": record["status"],
                "git_commit": record["provenance"]["git_commit"],
                NOTE_TAG: cell_note(record),
                **_source_tags(record["provenance"]["git_commit"])}
        tags |= {f"version.{k}": v for k, v in record["provenance"]["versions"].items()}
        if record["error"]:
            tags["xprune.error"] = record["error"][:5000]
        run_id = self._child(
            f"{cell['dataset']}/{cell['backbone']}/{cell['method']}/{cell['granularity']}"
            f"/{cell['scope']}/{cell['sparsity']:g}/{cell['recovery']}/{cell['seed']}",
            {CELL_TAG: record["cell_hash"]}, start_ms)
        metrics: dict[str, float] = {}
        _flatten("", record["metrics"] or {}, metrics)
        self.client.log_batch(
            run_id, metrics=[Metric(k, v, end_ms, 0) for k, v in sorted(metrics.items())],
            params=[_param(k, v) for k, v in cell.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()])
        self._log_dataset(run_id, cell["dataset"], cell["size"], "test")
        self.client.log_dict(run_id, record, "record.json")
        self._log_heatmaps(run_id, record)
        self.client.set_terminated(run_id, "FINISHED" if record["status"] == "ok" else "FAILED",
                                   end_time=end_ms)
        if self.journal is not None:
            self.journal.add("cell", record["cell_hash"])
        return run_id

    def _log_dataset(self, run_id: str, flag: str, size: int, context: str) -> None:
        """The dataset as one of the run's inputs (``mlflow.log_input``'s entity): the
        official file's address and md5, the image tensor's shape and the split sizes."""
        from mlflow.entities import DatasetInput, InputTag

        self.client.log_inputs(run_id, [DatasetInput(dataset_entity(flag, size),
                                                     [InputTag("mlflow.data.context", context)])])

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

    def log_baseline(self, key: dict[str, Any], entry: dict[str, Any],
                     written: float | None = None) -> str:
        """One child run per baseline over its training time (``written``: when its cache
        entry was written, the end; it started ``seconds`` before): its history as step
        metrics (one step per epoch: ``loss``, ``val.acc``, ``val.auc`` and whatever else each
        epoch recorded, stamped when the epoch ended), its final validation and test scores,
        its dataset as input and its weights as a logged PyTorch model with a signature."""
        from mlflow.entities import Metric

        self.flush()
        end = written if written is not None else time.time()
        start = end - float(entry.get("seconds") or 0.0)
        name = f"baseline {key['dataset']}/{key['backbone']}/seed{key['seed']}"
        run_id = self._child(name, {BASELINE_TAG: key["hash"], "xprune.status": "ok",
                                    NOTE_TAG: baseline_note(key, entry), **self.source},
                             _ms(start))
        metrics, clock = [], start
        for i, epoch in enumerate(entry.get("history") or []):
            if not isinstance(epoch, dict):
                continue
            clock += float(epoch.get("seconds") or 0.0)
            step = epoch.get("epoch", epoch.get("step", i + 1))
            values: dict[str, float] = {}
            _flatten("", {k: v for k, v in epoch.items() if k not in ("epoch", "step")}, values)
            metrics += [Metric(k, v, _ms(min(clock, end)), int(step))
                        for k, v in sorted(values.items())]
        final: dict[str, float] = {}
        _flatten("", {"best_val": entry.get("val"), "test": entry.get("test"),
                      "train_seconds": entry.get("seconds")}, final)
        metrics += [Metric(k, v, _ms(end), 0) for k, v in sorted(final.items())]
        for first in range(0, len(metrics), 900):  # MLflow takes at most 1000 per batch
            self.client.log_batch(run_id, metrics=metrics[first:first + 900])
        self.client.log_batch(run_id, params=[_param(k, v) for k, v in key.items()])
        self._log_dataset(run_id, key["dataset"], int(key.get("size", 28)), "train")
        self._log_model(run_id, key, entry)
        self.client.set_terminated(run_id, "FINISHED", end_time=_ms(end))
        if self.journal is not None:
            self.journal.add("baseline", key["hash"])
        return run_id

    def _log_model(self, run_id: str, key: dict[str, Any], entry: dict[str, Any]) -> None:
        """The baseline's weights as an MLflow PyTorch model (pickled module; loading it needs
        this package importable) with its tensor signature: images in, logits out."""
        import mlflow
        import mlflow.pytorch
        import numpy as np
        from mlflow.models import ModelSignature
        from mlflow.types import Schema, TensorSpec

        from bench.compute import data, models

        info = data.info(key["dataset"])
        size = int(key.get("size", 28))
        model = models.build(key["backbone"], info.n_channels, info.n_classes)
        model.load_state_dict(entry["state_dict"])
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, info.n_channels, size, size),
                                      "images")]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, info.n_classes), "logits")]))
        versions = provenance()["versions"]
        mlflow.set_tracking_uri(self.uri)  # Model.log resolves the store, and the experiment
        mlflow.set_experiment(experiment_id=self.experiment_id)  # the model belongs to, globally
        quiet = logging.getLogger("mlflow.pytorch")
        level, quiet.level = quiet.level, logging.ERROR  # its pickle-format caution, per model
        try:
            mlflow.pytorch.log_model(
                model.eval(), name=f"baseline-{key['hash']}", signature=signature,
                serialization_format="pickle", run_id=run_id,
                pip_requirements=[f"torch=={versions['torch']}"],
                tags={BASELINE_TAG: key["hash"], "digest": str(entry.get("digest", ""))})
        finally:
            quiet.setLevel(level)

    def log_summary(self, summary: dict[str, float], table: str,
                    curves: list[dict[str, Any]] | None = None) -> None:
        """The parent's summary metrics, the rendered summary table (``summary.md``) and, per
        setting, a run whose children are its methods' curves."""
        from mlflow.entities import Metric

        self.flush()
        now = _ms(time.time())
        self.client.log_batch(self.parent_id, metrics=[
            Metric(k, float(v), now, 0) for k, v in sorted(summary.items())])
        self.client.log_text(self.parent_id, table, "summary.md")
        for setting in curves or []:
            self.log_setting(setting)
        self.client.set_tag(self.parent_id, NOTE_TAG, parent_note(summary, curves or []))

    def log_setting(self, setting: dict[str, Any]) -> str:
        """A setting's run (its dense references) and one child run per method whose metrics
        ``bal_acc``, ``auc`` and ``acc`` have one step per measured sparsity (step = round(
        sparsity x 100), stamped when its last cell ended): charted against step in the UI."""
        from mlflow.entities import Metric, RunTag

        k = setting["key"]
        title = f"{k['dataset']}/{k['backbone']}/{k['granularity']}/{k['scope']}/{k['recovery']}"
        end = setting["end_ms"] or _ms(time.time())
        params = [_param(name, k[name]) for name in sorted(k)]
        setting_id = self._child(f"setting {title}", {
            "xprune.kind": "setting", "xprune.setting": setting["slug"],
            NOTE_TAG: setting_note(setting), **self.source}, setting["start_ms"] or end)
        dense = [Metric(f"dense.{m}", v, end, 0) for m, v in setting["dense"].items()
                 if v is not None]
        refs = [Metric(name, setting[name], end, 0) for name in ("chance", "majority")
                if setting[name] is not None]
        self.client.log_batch(setting_id, metrics=dense + refs, params=params)
        for row in setting["methods"]:
            metrics = [Metric(m, p[m], p["end_ms"] or end, p["step"])
                       for p in row["points"] for m in CURVE_METRICS if p[m] is not None]
            metrics += [Metric(f"area.{m}", v, end, 0) for m, v in row["area"].items()
                        if v is not None]
            if row["rank"] is not None:
                metrics.append(Metric("rank", float(row["rank"]), end, 0))
            run_id = self._child(f"{row['method']} on {title}", {
                "xprune.kind": "curve", "xprune.setting": setting["slug"], **self.source},
                setting["start_ms"] or end, parent=setting_id)
            self.client.log_batch(
                run_id, metrics=metrics,
                params=params + [_param("method", row["method"]),
                                 _param("method_version", row["version"])],
                tags=[RunTag(NOTE_TAG, curve_note(setting, row))])
            self.client.set_terminated(run_id, "FINISHED", end_time=end)
        self.client.set_terminated(setting_id, "FINISHED", end_time=end)
        return setting_id

    def finish(self, status: str = "FINISHED") -> None:
        """Log what is queued, stop the writer and end the parent run (FINISHED, FAILED or
        KILLED; FAILED when a queued cell could not be logged, whose error is then raised)."""
        self._pending.put(None)
        try:
            self.flush()
        except Exception:
            self.client.set_terminated(self.parent_id, "FAILED")
            raise
        finally:
            self._writer.join()
        self.client.set_terminated(self.parent_id, status)
        if self.journal is not None:
            self.journal.add("parent-closed", self.parent_id)


def dataset_entity(flag: str, size: int):
    """MLflow's dataset entity for a dataset at an image size: MedMNIST's official file
    (address, md5) or the built-in generator; its image tensor shape; its split sizes."""
    import numpy as np
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Dataset as DatasetEntity
    from mlflow.types import Schema, TensorSpec

    from bench.compute import data

    info = data.info(flag)
    schema = Schema([TensorSpec(np.dtype(np.float32), (-1, info.n_channels, size, size),
                                "images")])
    if info.synthetic:
        source, digest = CodeDatasetSource({"generator": "bench.compute.data (synthetic)"}), None
        splits = dict(SYNTHETIC_SPLITS)
    else:
        meta = data.medmnist_info()[flag]
        suffix = "" if size == 28 else f"_{size}"
        source = HTTPDatasetSource(meta[f"url{suffix}"])
        digest, splits = meta[f"MD5{suffix}"], dict(meta["n_samples"])
    entity = MetaDataset(source, name=f"{flag}-{size}", digest=digest,
                         schema=schema)._to_mlflow_entity()
    profile = {**splits, "classes": info.n_classes, "task": str(info.task),
               "md5": digest or "generated"}
    return DatasetEntity(entity.name, entity.digest, entity.source_type, entity.source,
                         entity.schema, json.dumps(profile))


def cell_note(record: dict[str, Any]) -> str:
    """A cell run's description: what was pruned how, and its scores (three decimals)."""
    c, m = record["cell"], record["metrics"] or {}
    head = (f"**{c['method']}** v{c['method_version']}, {c['granularity']} pruning "
            f"({c['scope']} scope) to sparsity {c['sparsity']:g} of {c['backbone']} on "
            f"{c['dataset']} ({c['size']} px), recovery {c['recovery']}, seed {c['seed']}.")
    if record["status"] != "ok":
        return f"{head}\n\nFailed: {record['error']}"
    rows = [f"| {name} | {_f3((m.get('dense') or {}).get(k))} | "
            f"{_f3((m.get('pruned') or {}).get(k))} | {_f3((m.get('recovered') or {}).get(k))} |"
            for k, name in (("bal_acc", "balanced accuracy"), ("auc", "AUC"),
                            ("acc", "accuracy"))]
    return "\n".join([head, "", "| metric | dense | pruned | recovered |", "|---|---|---|---|",
                      *rows, "", f"Measured in {record['provenance']['seconds']:.1f} s; the "
                      "record is the artifact `record.json`."])


def baseline_note(key: dict[str, Any], entry: dict[str, Any]) -> str:
    """A baseline run's description: what was trained, how long, its test scores."""
    test = entry.get("test") or {}
    epochs = sum(1 for e in entry.get("history") or [] if isinstance(e, dict) and e.get("epoch"))
    return (f"Dense **{key['backbone']}** trained on {key['dataset']} ({key.get('size', 28)} "
            f"px), seed {key['seed']}: {epochs} epochs in {float(entry.get('seconds') or 0):.1f}"
            f" s. Test balanced accuracy {_f3(test.get('bal_acc'))}, AUC "
            f"{_f3(test.get('auc'))}, accuracy {_f3(test.get('acc'))}. Its weights are the "
            "logged model; per-epoch loss and validation scores are step metrics.")


def setting_note(setting: dict[str, Any]) -> str:
    """A setting run's description: how to chart its curves, and its methods by rank."""
    k, d = setting["key"], setting["dense"]
    lines = [f"{k['granularity'].capitalize()} pruning ({k['scope']} scope) of "
             f"{k['backbone']} on {k['dataset']}" + (" (synthetic data, not medical)"
                                                     if setting["synthetic"] else "")
             + f", recovery {k['recovery']}. Dense balanced accuracy {_f3(d.get('bal_acc'))}"
             f" (chance {_f3(setting['chance'])}).", "",
             "Each child run is one method's curve: chart `bal_acc`, `auc` or `acc` against "
             "*step* (step = sparsity × 100; seeds averaged).", "",
             "| rank | method | area (bal. acc.) |", "|---|---|---|"]
    for row in setting["methods"]:
        rank = "–" if row["rank"] is None else f"{row['rank']:g}"
        lines.append(f"| {rank} | {row['method']} | {_f3(row['area'].get('bal_acc'))} |")
    return "\n".join(lines)


def curve_note(setting: dict[str, Any], row: dict[str, Any]) -> str:
    """A curve run's description: its points in three decimals."""
    k = setting["key"]
    lines = [f"**{row['method']}** v{row['version']} on {k['dataset']}/{k['backbone']}, "
             f"{k['granularity']} pruning: the mean over seeds at each sparsity "
             "(step = sparsity × 100).", "", "| sparsity | bal. acc. | AUC | acc. | seeds |",
             "|---|---|---|---|---|"]
    lines += [f"| {p['sparsity']:g} | {_f3(p['bal_acc'])} | {_f3(p['auc'])} | "
              f"{_f3(p['acc'])} | {p['seeds']} |" for p in row["points"]]
    return "\n".join(lines)


def parent_note(summary: dict[str, float], curves: list[dict[str, Any]]) -> str:
    """The parent run's description: counts, where the curves and the table are."""
    return (f"One `xprune run`: {int(summary.get('cells_ok', 0))} cells ok, "
            f"{int(summary.get('cells_failed', 0))} failed in "
            f"{summary.get('wall_seconds', 0):.0f} s. Children: one run per cell and per "
            f"baseline, and {len(curves)} setting runs whose children chart each method's "
            "balanced accuracy, AUC and accuracy against step = sparsity × 100. Metrics "
            "`area.<granularity>.<method>` are mean curve areas of balanced accuracy; the "
            "per-setting table is `summary.md`.")


# A tracking server that does not answer is refused in seconds; MLflow's own HTTP retries
# (7 with exponential back-off: about 260 s) are bounded unless the user set them.
CONNECT_SECONDS = 5.0
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
# the CLI says where to look; MLflow would print two lines per finished run on a server
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


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
