"""Scoring processes: the only processes that ever import a method plugin.

A plugin is untrusted code, so the engine never imports one. Two kinds of short-lived child
process do, each for one plugin source and then exit:

- a **metadata process** imports one plugin file (or entry point) and prints its classes'
  declarations as one JSON line (:func:`read_metadata`); a deadline covers the import;
- a **scoring process** receives a private model copy and the reference batch in a private
  temporary folder, imports the plugin, calls ``score()`` once and writes the score tensors
  back (:func:`score`); a deadline covers import and score.

Starting Python and importing torch costs seconds per scoring process, so by default scoring
processes are forked from a **scoring server** (:class:`Server`): a child of the worker,
inside the same sandbox, that has imported the engine and its libraries but never a plugin,
and forks one fresh scoring process per request. Each server serves one plugin source only
(a plugin's leftovers can reach nothing but its own later requests), a deadline overrun kills
the whole server, and ``$XPRUNE_SCORING=fresh`` starts every scoring process from scratch
instead (the same numbers; ``benchmarks/scoring_startup.py`` measures the difference).

The coordinator and the long-lived workers (training, pruning, recovery, measurement,
records, verify, the site) never import a plugin, so nothing a plugin does at import or in
``score()`` (patching an engine function, ``torch.set_grad_enabled(False)``,
``set_num_threads``, ``sys.exit``) reaches them. Returned scores are loaded with
``torch.load(weights_only=True)`` and validated again in the calling process.

Where bubblewrap (``bwrap``) works, each child also runs in a namespace sandbox: the whole
filesystem read-only except its temporary folder (``$TMPDIR`` points there), no network, its own
PID namespace (every process it spawns dies with it). ``$XPRUNE_SANDBOX``: ``auto``
(default: bwrap where it works, else a plain process, said so in the record), ``bwrap``
(required: fail if unavailable) or ``none``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.core.errors import PluginError, XPruneError

SANDBOX_ENV = "XPRUNE_SANDBOX"
SCORING_ENV = "XPRUNE_SCORING"  # "server" (default: forked from a scoring server) or "fresh"
SERVERS_KEPT = 3  # live scoring servers per worker (one per plugin source, least recent closed)
IMPORT_TIMEOUT_ENV = "XPRUNE_PLUGIN_IMPORT_TIMEOUT"
DEFAULT_IMPORT_TIMEOUT = 60.0  # seconds to import one plugin (after the engine is imported)
STARTUP_TIMEOUT = 300.0  # seconds for a child to import the engine (torch) before any plugin
# Default bound on one scoring task (import + score()), per backbone: 10 minutes on the small
# CNN, scaled by how much slower a cell on the backbone is (bench.run.coordinator.CELL_SECONDS).
SCORE_TIMEOUT_BASE = 600.0
SCORE_TIMEOUT_SCALE = {"smallcnn": 1.0, "vgg": 2.0, "vit": 2.0, "resnet18": 8.0}
_ERROR_LIMIT = 500  # characters of a child's error kept
_PRCTL: Any = None  # set by _run before the first child starts


def default_score_timeout(backbone: str) -> float:
    """The default wall-clock bound on one scoring process for ``backbone`` (seconds)."""
    return SCORE_TIMEOUT_BASE * SCORE_TIMEOUT_SCALE.get(backbone, 8.0)


def import_timeout() -> float:
    try:
        value = float(os.environ.get(IMPORT_TIMEOUT_ENV, DEFAULT_IMPORT_TIMEOUT))
    except ValueError:
        return DEFAULT_IMPORT_TIMEOUT
    return value if value > 0 else DEFAULT_IMPORT_TIMEOUT


def _bwrap_prefix(folder: Path, device: str = "cpu") -> list[str]:
    dev = ["--dev-bind", "/dev", "/dev"] if device != "cpu" else ["--dev", "/dev"]
    return ["bwrap", "--ro-bind", "/", "/", *dev, "--proc", "/proc",
            "--bind", str(folder), str(folder), "--unshare-all", "--die-with-parent",
            "--new-session", "--setenv", "TMPDIR", str(folder), "--chdir", str(folder)]


@functools.lru_cache(maxsize=1)
def sandbox_mode() -> str:
    """``bwrap`` when the namespace sandbox works here (probed once per process), else
    ``none: <why>``; ``$XPRUNE_SANDBOX=bwrap`` makes an unavailable sandbox an error."""
    wanted = os.environ.get(SANDBOX_ENV, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "bwrap", "none"):
        raise XPruneError(f"${SANDBOX_ENV} must be auto, bwrap or none, got {wanted!r}")
    if wanted == "none":
        return f"none: disabled by ${SANDBOX_ENV}"
    why = ""
    if shutil.which("bwrap") is None:
        why = "bwrap not installed"
    else:
        with tempfile.TemporaryDirectory(prefix="xprune-probe-") as folder:
            probe = Path(folder) / "probe"
            try:
                done = subprocess.run(
                    [*_bwrap_prefix(Path(folder)), sys.executable, "-c",
                     f"open({str(probe)!r}, 'w').write('ok')\n"
                     "try:\n open('/usr/.xprune-probe', 'w')\nexcept OSError: pass\n"
                     "else: raise SystemExit(3)"],
                    capture_output=True, text=True, timeout=60)
                ok = done.returncode == 0 and probe.is_file()
                why = "" if ok else f"bwrap does not work here: {done.stderr.strip()[:200]}"
            except (OSError, subprocess.SubprocessError) as exc:
                why = f"bwrap does not work here: {exc}"
    if why and wanted == "bwrap":
        raise XPruneError(f"${SANDBOX_ENV}=bwrap but {why}")
    return f"none: {why}" if why else "bwrap"


def isolation() -> str:
    """What a record's ``provenance.scoring`` says: how its scores were isolated."""
    mode = sandbox_mode()
    kind = "process" if scoring_mode() == "fresh" else "forked process"
    return f"{kind}+bwrap" if mode == "bwrap" else f"{kind} ({mode})"


def scoring_mode() -> str:
    """``server`` (scoring processes forked from a per-plugin server) or ``fresh``."""
    wanted = os.environ.get(SCORING_ENV, "server").strip().lower() or "server"
    if wanted not in ("server", "fresh"):
        raise XPruneError(f"${SCORING_ENV} must be server or fresh, got {wanted!r}")
    return wanted


def _command(args: list[str], folder: Path, device: str = "cpu") -> list[str]:
    base = [sys.executable, "-m", "bench.compute.sandbox", *args]
    return [*_bwrap_prefix(folder, device), *base] if sandbox_mode() == "bwrap" else base


def _env() -> dict[str, str]:
    """The child's environment: this one, with the engine's own path first (never a plugin's)."""
    engine = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [engine, path]))}


class ScoringTimeout(PluginError):
    """A scoring or metadata process ran past its deadline and was killed."""


class _Deadlines:
    """The three bounds on one scoring request, read from the markers its child creates:
    ``folder/ready`` once the engine is imported (STARTUP_TIMEOUT: no plugin code has run
    yet), ``folder/scoring`` when ``score()`` is about to run (the import before it bounded by
    ``import_limit``, ``score()`` after it by ``score_limit``)."""

    def __init__(self, folder: Path, import_limit: float, score_limit: float | None) -> None:
        self.ready, self.marker = folder / "ready", folder / "scoring"
        self.import_limit, self.score_limit = import_limit, score_limit
        self.start = time.monotonic()
        self.imported: float | None = None
        self.began: float | None = None

    def overrun(self) -> str:
        """Why the request must be killed now, or "" while it is within its bounds."""
        now = time.monotonic()
        if self.imported is None and self.ready.exists():
            self.imported = now
        if self.began is None and self.score_limit is not None and self.marker.exists():
            self.began = now
        if self.imported is None and now - self.start > STARTUP_TIMEOUT:
            return f"the engine did not start within {STARTUP_TIMEOUT:g} s"
        if self.imported is not None and self.began is None and \
                now - self.imported > self.import_limit:
            return f"import did not finish within {self.import_limit:g} s"
        if self.began is not None and now - self.began > self.score_limit:
            return f"score() did not finish within {self.score_limit:g} s"
        return ""

    def scored_seconds(self) -> float:
        """Seconds since ``score()`` began (0 if it never did)."""
        if self.began is None and self.marker.exists():  # scored between two polls
            self.began = self.start
        return time.monotonic() - self.began if self.began is not None else 0.0


def _last_line(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return lines[-1][:_ERROR_LIMIT] if lines else ""


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a child's whole process group (it and anything it spawned), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _spawn(args: list[str], folder: Path, device: str, stdin: Any, sink: Any) -> subprocess.Popen:
    global _PRCTL
    _PRCTL = _prctl()
    return subprocess.Popen(_command(args, folder, device), stdin=stdin, stdout=sink, stderr=sink,
                            cwd=folder, env=_env(), start_new_session=True,
                            preexec_fn=_die_with_parent)


def _run(args: list[str], folder: Path, import_limit: float, score_limit: float | None = None,
         device: str = "cpu") -> tuple[int, str, float]:
    """Run one fresh child in its own session and kill its whole process group when it ends
    or overruns (:class:`_Deadlines`); return (exit status, last line it printed, seconds
    since it began scoring)."""
    log = folder / "child.log"
    deadlines = _Deadlines(folder, import_limit, score_limit)
    with open(log, "wb") as sink:
        proc = _spawn(args, folder, device, subprocess.DEVNULL, sink)
        overrun = ""
        try:
            while proc.poll() is None:
                overrun = deadlines.overrun()
                if overrun:
                    break
                time.sleep(0.05)
        finally:
            _kill_group(proc)
    if overrun:
        raise ScoringTimeout(f"{overrun} (process killed)")
    return proc.returncode, _last_line(log), deadlines.scored_seconds()


class Server:
    """A scoring server for one plugin source: a sandboxed child of this process that has
    imported the engine (never a plugin) and forks one scoring process per request.

    Requests live in folders under the server's own folder (the only place the sandbox can
    write); the server answers each with ``exit.json`` (the forked child's exit status). A
    request that overruns a deadline kills the whole server; the next request starts another.
    """

    def __init__(self, source: str, device: str) -> None:
        self.source, self.device = source, device
        self.folder = Path(tempfile.mkdtemp(prefix="xprune-server-"))
        self._log = open(self.folder / "server.log", "wb")
        self.proc = _spawn(["serve", str(self.folder)], self.folder, device, subprocess.PIPE,
                           self._log)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (self.folder / "ready").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = (f"ended ({_status(self.proc.returncode)})" if self.proc.poll() is not None
                       else f"did not start within {STARTUP_TIMEOUT:g} s")
                last = _last_line(self.folder / "server.log")
                self.close()
                raise PluginError(f"the scoring server {why}{': ' + last if last else ''}")
            time.sleep(0.02)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request_folder(self) -> Path:
        """A fresh folder for one request, inside the server's writable folder."""
        return Path(tempfile.mkdtemp(prefix="request-", dir=self.folder))

    def run(self, args: list[str], folder: Path, import_limit: float,
            score_limit: float | None) -> tuple[int, str, float]:
        """Have the server fork a child for ``args`` (as :func:`_run` takes them, ``folder``
        one of :meth:`request_folder`); return what :func:`_run` returns."""
        deadlines = _Deadlines(folder, import_limit, score_limit)
        answer = folder / "exit.json"
        try:
            self.proc.stdin.write((json.dumps(args) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            self.close()
            raise PluginError("the scoring server had ended before the request") from None
        overrun = ""
        while not answer.exists():
            if not self.alive():
                self.close()
                return (self.proc.returncode, _last_line(folder / "child.log"),
                        deadlines.scored_seconds())
            overrun = deadlines.overrun()
            if overrun:
                self.close()
                raise ScoringTimeout(f"{overrun} (process killed)")
            time.sleep(0.02)
        try:
            code = int(json.loads(answer.read_text())["code"])
        except (OSError, ValueError, KeyError, TypeError):
            self.close()
            raise PluginError("the scoring server answered unreadably") from None
        return code, _last_line(folder / "child.log"), deadlines.scored_seconds()

    def close(self) -> None:
        """Kill the server (and every process in its sandbox) and remove its folder."""
        _kill_group(self.proc)
        if self.proc.stdin:
            self.proc.stdin.close()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        if _SERVERS.get((self.source, self.device)) is self:
            del _SERVERS[(self.source, self.device)]


_SERVERS: dict[tuple[str, str], Server] = {}  # this process's live servers, oldest first


def server(source: str, device: str) -> Server:
    """This process's live scoring server for ``source`` on ``device``, started if needed;
    at most ``SERVERS_KEPT`` stay alive (the least recently used is closed)."""
    key = (source, device)
    found = _SERVERS.pop(key, None)
    if found is not None and not found.alive():
        found.close()
        found = None
    if found is None:
        while len(_SERVERS) >= SERVERS_KEPT:
            next(iter(_SERVERS.values())).close()
        found = Server(source, device)
    _SERVERS[key] = found  # most recently used last
    return found


def close_servers() -> None:
    """Close every scoring server of this process (also done at exit)."""
    for found in list(_SERVERS.values()):
        found.close()


atexit.register(close_servers)


@functools.lru_cache(maxsize=1)
def _prctl() -> Any:
    """libc's prctl, resolved in the parent (nothing is imported between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it when the process that started it dies
    (a worker killed for overrunning its task must not leave a scoring process behind)."""
    prctl = _PRCTL
    if prctl is not None:
        prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def _status(code: int) -> str:
    """How a child ended, in words; bwrap reports a child killed by signal N as 128 + N."""
    if code > 128 and sandbox_mode() == "bwrap":
        code = 128 - code
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


# -- metadata ---------------------------------------------------------------------------------

def read_metadata(source: str, timeout: float | None = None) -> list[dict[str, Any]]:
    """The class declarations of one plugin source (``bench.plugins._class_meta`` of each
    class), read by importing it in a metadata process; PluginError when the import fails,
    exits or runs past the deadline."""
    limit = timeout or import_timeout()
    with tempfile.TemporaryDirectory(prefix="xprune-meta-") as tmp:
        folder = Path(tmp)
        code, last, _ = _run(["meta", source, str(folder / "meta.json")], folder, limit)
        try:
            answer = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            raise PluginError(f"the plugin ended its import process ({_status(code)}) without "
                              f"declaring anything{': ' + last if last else ''}") from None
    if not isinstance(answer, dict):
        raise PluginError("the metadata process returned nothing usable")
    if "error" in answer:
        raise PluginError(str(answer["error"])[:_ERROR_LIMIT])
    metas = answer.get("classes")
    if not isinstance(metas, list) or not all(_valid_meta(m) for m in metas):
        raise PluginError("the metadata process returned malformed declarations")
    return metas


def _valid_meta(meta: Any) -> bool:
    if not isinstance(meta, dict):
        return False
    if "problems" in meta:
        return isinstance(meta.get("name"), str) and isinstance(meta["problems"], list)
    m = meta.get("meta")
    return isinstance(m, dict) and all(isinstance(k, str) and isinstance(v, str)
                                       for k, v in m.items()) and "name" in m


# -- scoring ----------------------------------------------------------------------------------

def score(source: str, method: str, model, granularity: str, batch, seed: int,
          timeout: float, device: str = "cpu", version: str | None = None,
          ) -> tuple[dict[str, Any], float]:
    """Score ``model``'s sites with plugin ``method`` from ``source`` in a fresh scoring
    process (forked from the source's scoring server, or started from scratch: see
    :func:`scoring_mode`); return the scores (validated here) and the seconds ``score()`` took.

    The import is bounded by :func:`import_timeout`, ``score()`` by ``timeout`` seconds
    (ScoringTimeout); a plugin that exits, dies or breaks the contract is a PluginError, and
    so is one whose class is no longer ``version`` (when given: the file changed)."""
    import torch

    from bench.compute.scoring import validate
    from bench.compute.units import find_sites, scoring_copy

    sites = find_sites(scoring_copy(model), granularity)  # what the scores must cover
    with _request(source, device) as (folder, run):
        torch.save({"model": scoring_copy(model), "granularity": granularity, "batch": batch,
                    "seed": seed, "threads": torch.get_num_threads(), "device": device,
                    "version": version},
                   folder / "request.pt")
        try:
            code, last, wall = run(["score", source, method, str(folder)], folder,
                                   import_timeout(), timeout)
        except ScoringTimeout as exc:
            raise ScoringTimeout(f"{method}: {exc}") from None
        error = folder / "error.json"
        if error.is_file():
            try:
                message = str(json.loads(error.read_text())["error"])
            except (OSError, ValueError, KeyError, TypeError):
                message = "the scoring process reported an unreadable error"
            raise PluginError(message[:_ERROR_LIMIT])
        try:
            answer = torch.load(folder / "result.pt", weights_only=True)
            raw, seconds = answer["scores"], float(answer["seconds"])
        except Exception:
            raise PluginError(f"{method}: the scoring process ended ({_status(code)}) without "
                              f"returning scores{': ' + last if last else ''}") from None
    if code != 0:
        raise PluginError(f"{method}: the scoring process ended with {_status(code)}")
    scores = validate(method, raw, sites)
    # score() is timed in the child; a child cannot claim more time than its process took
    return scores, min(max(seconds, 0.0), wall) if math.isfinite(seconds) else wall


@contextlib.contextmanager
def _request(source: str, device: str) -> Iterator[tuple[Path, Callable[..., tuple[int, str,
                                                                                   float]]]]:
    """A private folder for one scoring request and the function that runs it: through the
    source's scoring server, or as a fresh process (``$XPRUNE_SCORING=fresh``)."""
    if scoring_mode() == "fresh":
        with tempfile.TemporaryDirectory(prefix="xprune-score-") as tmp:
            yield Path(tmp), functools.partial(_run, device=device)
        return
    found = server(source, device)
    folder = found.request_folder()
    try:
        yield folder, found.run
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the children -----------------------------------------------------------------------------

def _load_classes(source: str, folder: Path) -> list:
    """Import a plugin source's classes; ``folder/ready`` marks the start of the import."""
    from bench import api, plugins  # noqa: F401  (the engine, before any plugin code)

    (folder / "ready").touch()

    kind, _, rest = source.partition(":")
    if source.startswith("methods/"):
        return plugins.load_file(plugins.BUILTIN_DIR / Path(source).name)
    if kind == "path":
        return plugins.load_file(Path(rest))
    if kind == "entry-point":
        name = rest.rsplit(":", 1)[-1]
        for ep, src in plugins._entry_points():
            if src == source or ep.name == name:
                return plugins._load_entry_point(ep)
        raise PluginError(f"entry point {name!r} not found")
    raise PluginError(f"unknown plugin source {source!r}")


def _child_meta(source: str, out: str) -> None:
    from bench import plugins

    try:
        answer: dict[str, Any] = {"classes": [plugins._class_meta(cls, source)
                                              for cls in _load_classes(source, Path(out).parent)]}
    except PluginError as exc:
        answer = {"error": str(exc)}
    except BaseException as exc:  # SystemExit, KeyboardInterrupt at import
        answer = {"error": f"import ended the process ({type(exc).__name__}: {exc})"}
    Path(out).write_text(json.dumps(answer))


def _child_score(source: str, method: str, folder: str) -> None:
    import torch

    from bench.compute import device as devices
    from bench.compute.scoring import run_method
    from bench.core.errors import one_line

    where = Path(folder)
    try:
        request = torch.load(where / "request.pt", weights_only=False)  # written by the engine
        torch.set_num_threads(request["threads"])
        devices.configure(request["device"])
        classes = [c for c in _load_classes(source, where)
                   if getattr(c, "name", None) == method]
        if not classes:
            raise PluginError(f"{method}: {source} no longer defines it")
        wanted = request.get("version")
        if wanted is not None and str(classes[0].version) != wanted:
            raise PluginError(f"{method}: the plugin is now version {classes[0].version}, the "
                              f"cell asks for {wanted}")
        (where / "scoring").touch()  # imported: from here the score() deadline applies
        scores, seconds = run_method(classes[0], request["model"], request["granularity"],
                                     request["batch"], request["seed"])
    except PluginError as exc:
        (where / "error.json").write_text(json.dumps({"error": str(exc)}))
        return
    except BaseException as exc:  # SystemExit from score() or the import
        (where / "error.json").write_text(json.dumps(
            {"error": f"{method}: the plugin ended the scoring process "
                      f"({one_line(exc, typed=True)})"}))
        return
    torch.save({"scores": scores, "seconds": seconds}, where / "result.pt")


PRELOADED = ("torch", "bench.api", "bench.plugins", "bench.compute.scoring",
             "bench.compute.device", "bench.attribution", "captum.attr", "zennit.composites",
             "torch_pruning")  # the engine and the libraries plugins use; never a plugin


def _serve(folder: str) -> None:
    """The scoring server's loop: import the engine, then for each request line on stdin
    (the JSON arguments of a child) fork a scoring process and answer with its exit status.

    No tensor operation runs here (a fork after one could inherit busy thread pools); each
    child sets its threads, device and seed from its request as a fresh process does."""
    import importlib

    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional library; the child imports what it needs
            pass
    (Path(folder) / "ready").touch()
    for line in sys.stdin:
        args = json.loads(line)
        where = Path(args[-1])
        pid = os.fork()
        if pid == 0:  # the scoring process
            code = 1
            try:
                sink = os.open(where / "child.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(sink, 1)
                os.dup2(sink, 2)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                _child(args)
                code = 0
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        answer = where / "exit.json"
        (where / "exit.tmp").write_text(json.dumps({"code": os.waitstatus_to_exitcode(status)}))
        os.replace(where / "exit.tmp", answer)


def _child(argv: list[str]) -> bool:
    """Run one child's work (``meta SOURCE OUT`` or ``score SOURCE METHOD FOLDER``)."""
    if argv[:1] == ["meta"] and len(argv) == 3:
        _child_meta(argv[1], argv[2])
    elif argv[:1] == ["score"] and len(argv) == 4:
        _child_score(*argv[1:])
    else:
        return False
    return True


def main(argv: list[str]) -> int:
    """``python -m bench.compute.sandbox meta SOURCE OUT``, ``score SOURCE METHOD FOLDER`` or
    ``serve FOLDER`` (a scoring server)."""
    if argv[:1] == ["serve"] and len(argv) == 2:
        _serve(argv[1])
    elif not _child(argv):
        print("usage: python -m bench.compute.sandbox meta SOURCE OUT | score SOURCE METHOD "
              "FOLDER | serve FOLDER", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
