"""The experiments runner: every point of a profile's ``experiments:`` into ``runs/<id>/points/<k>/``.

``scripts/run-lab --profile experiments`` (:func:`run_experiments`):

1. prints the plan and its estimate (:mod:`swlab.run.experiments`);
2. papermill runs ``00_setup``, ``01_deploy`` and ``02_smoke_test`` into the run, as the mission does;
   then a few images are ingested once (the *seed*): Workflow 2's loads classify them;
3. each point, in order (:func:`run_points`): deploy (only when the point's deploy configuration
   differs from the stack's: otherwise the deployed stack is reused) → load (mode ``load``: warm-up
   requests, then JMeter per workflow; mode ``cold``: every function forced cold, then requests one
   at a time) → collect, into the point's own run directory, with its resolved configuration and
   provenance. A point that fails is recorded (stage and one-line error) and the next one goes on;
   the terminal shows point k of n, the stage, and the time left;
4. papermill runs one analysis notebook per experiment (``notebooks/experiments/``), the
   discussion, and ``08_teardown``; the book is built.

Points run in this process through the same step functions the notebooks call
(:class:`~swlab.run.provisioning.Deployment`, :class:`~swlab.run.measure.LoadTest`,
:func:`~swlab.analysis.collect.collect_run`): a papermill kernel per point and stage would add
about 4 s each. Nothing here branches on the target but :func:`swlab.provision.cold.force_cold`.

One concern, kept in one module: running an experiments profile, from its set-up through every
point to its pages (and their re-run, :func:`reanalyse`); the parts share the run's layout and
its progress.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Unpack

from swlab.analysis.collect import collect_run
from swlab.analysis.dataset import save_run
from swlab.analysis.experiment_memory import memory_choices, memory_table
from swlab.analysis.points import load_points
from swlab.analysis.prices import load_prices
from swlab.loadtest.plans import WORKFLOWS, LoadProfile, write_data_file
from swlab.loadtest.progress import Progress
from swlab.provision.cold import force_cold
from swlab.provision.model_weights import weights_substitutions
from swlab.run import smoke
from swlab.run.cleanup import RunInterrupted, clean_after_interrupt, clean_stale_runs
from swlab.run.experiments import (
    DEPLOY_KEYS,
    MEMORY_CHOICES,
    POINT_DEFAULTS,
    Point,
    base_config,
    estimate_seconds,
    plan_points,
)
from swlab.run.measure import Drained, LoadTest, client_samples, wait_executions_done
from swlab.run.options import RunOptions
from swlab.run.paths import LabError, notebooks, project_root
from swlab.run.profiles import LabProfile, plan_parameters
from swlab.run.provisioning import Deployment, api_endpoint, deployed_outputs
from swlab.run.reaper import RunnerMark
from swlab.run.records import CollectRecord, ModelsRecord, PointRecord, ProbeRecord, ProfileRecord
from swlab.run.rundir import RunDir, now, now_iso, start_run
from swlab.run.services import image_urls
from swlab.run.stages import LabResult, Stage, build_book_stage, execute_stage, print_summary, safety_stop
from swlab.settings import client

SETUP_NOTEBOOKS = ("00_", "01_", "02_")
TEARDOWN_NOTEBOOK = "08_"
COPIED_KEYS = ("run_id", "created_at", "settings", "target", "localcloud", "image_server", "provenance", "models")
SEED_KEY = "seed_image_ids"
POINT_ONLY = set(POINT_DEFAULTS) - set(DEPLOY_KEYS)  # point settings no set-up notebook declares


# ----------------------------------------------------------------------------- progress


def clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass
class Eta:
    """Time left: the estimates of the points to come, scaled by how the points so far compared to theirs."""

    estimates: list[float]
    started: float = field(default_factory=lambda: time.monotonic())
    done_estimate: float = 0.0
    done_elapsed: float = 0.0
    point_started: float = field(default_factory=lambda: time.monotonic())

    def finished(self, k: int) -> None:
        now = time.monotonic()
        self.done_estimate, self.done_elapsed, self.point_started = sum(self.estimates[:k]), now - self.started, now

    def left(self, k: int) -> float:
        """Seconds left while point ``k`` (1-based) runs."""
        ratio = min(max(self.done_elapsed / self.done_estimate, 0.5), 3.0) if self.done_estimate > 30 else 1.0
        in_point = time.monotonic() - self.point_started
        current = self.estimates[k - 1] * ratio
        return sum(self.estimates[k:]) * ratio + max(current - in_point, 0.0)


# ----------------------------------------------------------------------------- one point


def open_point(run: RunDir, point: Point) -> RunDir:
    """Point ``point.index``'s run directory: the parent's settings and provenance, its own configuration."""
    prun = run.point(point.index)
    if prun.dir.exists():
        shutil.rmtree(prun.dir)
    prun.dir.mkdir(parents=True)
    parent = run.manifest()
    for key in COPIED_KEYS:
        if key in parent:
            prun.record(key, parent[key])
    prun.record("run_id", f"{run.id}/points/{prun.dir.name}")
    prun.record("parent_run", str(run.dir))
    prun.record("parameters", point.config)
    prun.save(PointRecord(**{**point.as_dict(), "status": "running", "began": now_iso()}))
    return prun


PointBody = Callable[[RunDir, Point, Callable[[str], None]], dict[str, Any]]


def run_points(
    run: RunDir, points: list[Point], body: PointBody, say: Callable[[str], None] = print
) -> list[PointRecord]:
    """Each point through ``body`` (its stages; returns extra record fields); a failure is recorded, not raised."""
    eta = Eta(estimate_seconds(points))
    records: list[PointRecord] = []
    n = len(points)
    for k, point in enumerate(points, 1):
        prun = open_point(run, point)
        seconds: dict[str, float] = {}
        current: dict[str, Any] = {"stage": "start", "t": time.monotonic()}

        def stage(name: str, k: int = k, point: Point = point) -> None:
            t = time.monotonic()
            if current["stage"] != "start":
                seconds[str(current["stage"])] = round(t - float(current["t"]), 2)
            current.update(stage=name, t=t)
            say(f"[point {k}/{n}] {point.label()} · {name} · {clock(eta.left(k))} left")

        extra: dict[str, Any] = {}
        status, error = "ok", None
        try:
            extra = body(prun, point, stage) or {}
        except KeyboardInterrupt:
            status, error = "failed", "interrupted by the user"
        except Exception as exc:  # noqa: BLE001 - a point's failure is a result; the next point goes on
            status, error = "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
        seconds[str(current["stage"])] = round(time.monotonic() - float(current["t"]), 2)
        record = PointRecord(
            **{
                **point.as_dict(),
                **extra,
                "status": status,
                "stage": current["stage"] if status == "failed" else None,
                "error": error,
                "seconds": seconds,
                "began": (prun.load(PointRecord) or PointRecord()).began,
                "finished": now_iso(),
            }
        )
        prun.save(record)
        records.append(record)
        eta.finished(k)
        verdict = "ok" if status == "ok" else f"FAILED in {record.stage}: {error}"
        say(f"[point {k}/{n}] {verdict} ({sum(seconds.values()):.0f} s)")
        run.record("points", [_point_summary(r) for r in records])
        if error == "interrupted by the user":  # recorded; the run cleans up and ends (run_experiments)
            raise KeyboardInterrupt
    return records


def _point_summary(r: PointRecord) -> dict[str, Any]:
    return {
        "index": r.index,
        "experiment": r.experiment,
        "axes": r.axes,
        "status": r.status,
        "stage": r.stage,
        "error": r.error,
        "seconds": round(sum(r.seconds.values()), 1),
    }


@dataclass
class LabPoints:
    """The real stages of a point on the run's stack (deploy or reuse → load or cold probes → collect)."""

    run: RunDir
    seed_ids: list[str]
    placeholders: dict[str, str] = field(default_factory=dict)  # model weights' keys, as 01_deploy used them
    given_urls: list[str] = field(default_factory=list)  # the profile's image_urls (target aws); empty: local server
    deployed_key: str | None = None
    progress: Callable[[str], None] = print
    default_memory: dict[str, Any] = field(default_factory=dict)  # memory_mb before any point (the profile's)

    def __call__(self, prun: RunDir, point: Point, stage: Callable[[str], None]) -> dict[str, Any]:
        cfg = point.config
        drained: Drained | None = None
        if cfg.get("memory_choice"):  # a sweep's check: its sizes come from the sweep's points, now
            stage(f"choose {cfg['memory_choice']} sizes")
            cfg["memory_mb"] = chosen_memory(self.run, point.experiment, str(cfg["memory_choice"]), self.default_memory)
            prun.record("parameters", cfg)
        if point.deploy_key != self.deployed_key:
            stage("deploy")
            self.deployed_key = None  # unknown until this deploy succeeds
            dep = Deployment(
                prun,
                workflow_type=cfg["workflow_type"],
                memory_mb=dict(cfg["memory_mb"]),
                deploy_options=dict(cfg["deploy_options"]),
                progress=None,
            )
            dep.deploy(**self.placeholders)
            dep.record()
            self.deployed_key = point.deploy_key
            self.run.deploy_outputs.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(prun.deploy_outputs, self.run.deploy_outputs)  # the stack as it is now (08_teardown)
        else:
            prun.deploy_outputs.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.run.deploy_outputs, prun.deploy_outputs)
        if point.mode == "cold":
            stage("cold starts")
            measured_from = self.cold_probes(prun, cfg)
        else:
            stage("warm-up")
            for wf in cfg["workflows"]:
                for _ in range(int(cfg["warmup_requests"])):
                    self.request(prun, wf, 0)
            measured_from = now_iso()
            for wf in cfg["workflows"]:
                stage(f"load {wf}")
                self.load(prun, wf, cfg, stage)
            if "wf2" in cfg["workflows"]:
                stage("drain")
                drained = self.drain(prun, measured_from, float(cfg["drain_timeout_s"]), stage)
        stage("collect")
        collect_point(prun, float(cfg["settle_s"]), jmeter=point.mode == "load", until=now())
        return {"measured_from": measured_from, **({"drained": drained.as_dict()} if drained else {})}

    def drain(self, prun: RunDir, since: str, timeout_s: float, stage: Callable[[str], None]) -> Drained:
        """Wait (bounded) until Workflow 2's executions started since ``since`` are terminal; say those that are not."""
        arn = deployed_outputs(prun).state_machine["arn"]
        sfn = client(prun.settings(), "stepfunctions")
        drained = wait_executions_done(
            sfn, arn, datetime.fromisoformat(since), timeout_s, progress=lambda line: stage(f"drain: {line}")
        )
        if drained.running:
            stage(f"drain: {len(drained.running)} executions still running after {timeout_s:.0f} s (recorded)")
        return drained

    def request(self, prun: RunDir, workflow: str, i: int) -> smoke.Answer:
        api = deployed_outputs(prun).api
        if workflow == "wf1":
            urls = image_urls(prun, self.given_urls)
            return smoke.post(api["endpoints"]["ingest"], {"image_url": urls[i % len(urls)]}, api["api_key"])
        body = {"image_id": self.seed_ids[i % len(self.seed_ids)]}
        return smoke.post(api["endpoints"]["classify"], body, api["api_key"])

    def cold_probes(self, prun: RunDir, cfg: dict[str, Any]) -> str:
        """Per workflow: every function forced cold, then ``cold_requests`` and ``warm_requests`` one by one."""
        settings = prun.settings()
        functions = [f["function_name"] for f in deployed_outputs(prun).functions.values()]
        rows: list[dict[str, Any]] = []
        started = now()
        for wf in cfg["workflows"]:
            for kind, count in (("cold", int(cfg["cold_requests"])), ("warm", int(cfg["warm_requests"]))):
                for i in range(count):
                    if kind == "cold":
                        force_cold(settings, functions)
                    sent = now_iso()
                    answer = self.request(prun, wf, i)
                    rows.append(
                        {
                            "workflow": wf,
                            "kind": kind,
                            "sent_at": sent,
                            "status": answer.status,
                            "ms": answer.elapsed_ms,
                        }
                    )
        path = prun.path("probes.csv")
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["workflow", "kind", "sent_at", "status", "ms"])
            writer.writeheader()
            writer.writerows(rows)
        prun.save(ProbeRecord(started_at=started.isoformat(), ended_at=now_iso(), csv=str(path), requests=len(rows)))
        return started.isoformat()

    def load(self, prun: RunDir, workflow: str, cfg: dict[str, Any], stage: Callable[[str], None]) -> None:
        rows = image_urls(prun, self.given_urls) if workflow == "wf1" else list(self.seed_ids)
        write_data_file(prun.data_file(workflow), rows, WORKFLOWS[workflow].field)
        profile = LoadProfile(
            rate_per_s=float(cfg["rate_per_s"]),
            duration_s=int(cfg["duration_s"]),
            timeout_ms=int(cfg["timeout_s"] * 1000),
        )
        test = LoadTest(prun, workflow, profile, api_endpoint(prun), len(rows))
        last = {"at": 0.0}

        def progress(p: Progress) -> None:
            if p.done or time.monotonic() - last["at"] >= 10:
                last["at"] = time.monotonic()
                stage(f"load {workflow}: {p.elapsed_s:.0f}/{p.planned_s:.0f} s, {p.samples} samples, {p.errors} errors")

        test.execute(progress=progress)


def chosen_memory(run: RunDir, experiment: str, choice: str, default: dict[str, Any]) -> dict[str, Any]:
    """The ``memory_mb`` a memory sweep's check point deploys: per function, the size the sweep's points
    (``experiment``'s, collected so far) make the ``choice`` (``balanced``, ``cheapest``, ``fastest``:
    :func:`swlab.analysis.experiment_memory.memory_choices`), or ``default`` (the profile's sizes)."""
    if choice == "default":
        return dict(default)
    if choice not in MEMORY_CHOICES:
        raise LabError(f"memory_choice must be one of {MEMORY_CHOICES}, got {choice!r}")
    swept = [p for p in load_points(run.dir, experiment) if p.ok and not p.config.get("memory_choice")]
    choices = memory_choices(memory_table(swept, load_prices()))
    if not len(choices):
        raise LabError(f"no function ran without error at any size of {experiment!r}: no {choice} size to deploy")
    return {str(fn): int(mb) for fn, mb in choices[f"{choice}_mb"].items()}


def collect_point(prun: RunDir, settle_s: float, jmeter: bool, until: datetime | None = None) -> None:
    """The point's telemetry (its measured window) into ``points/<k>/data``, as ``05_collect`` does.

    ``until``: the window reaches at least this far (plus the margin): executions that ended after the
    load, while the runner waited for them, have their end in the data (an Express machine's log events).
    """
    settings, (start, end) = prun.settings(), prun.window()
    if until is not None:
        end = max(end, until + timedelta(seconds=5))
    time.sleep(settle_s)
    data = collect_run(settings, start, end, jtl=client_samples(prun) if jmeter else None, extra={"run_id": prun.id})
    save_run(data, prun.data_dir)
    prun.save(CollectRecord(data=str(prun.data_dir), window=[start.isoformat(), end.isoformat()]))


# ----------------------------------------------------------------------------- the whole run


def seed_images(run: RunDir, count: int = 4, given_urls: list[str] | None = None) -> list[str]:
    """Ingest ``count`` images once; Workflow 2's loads and probes classify these. Recorded in the manifest.

    ``given_urls``: public image URLs (target aws); empty: the run's local image server's."""
    api, urls = deployed_outputs(run).api, image_urls(run, given_urls)
    ids = []
    for i in range(count):
        answer = smoke.post(api["endpoints"]["ingest"], {"image_url": urls[i % len(urls)]}, api["api_key"])
        if answer.status != 201 or "image_id" not in (answer.body or {}):
            raise LabError(f"seeding: POST /ingest answered {answer.status}: {str(answer.body)[:200]}")
        ids.append(answer.body["image_id"])
    run.record(SEED_KEY, ids)
    return ids


def experiment_notebooks(root: Path) -> dict[str, Path]:
    """``notebooks/experiments/eN_<analysis>.ipynb`` by analysis name."""
    folder = root / "notebooks" / "experiments"
    return {p.stem.split("_", 1)[1]: p for p in sorted(folder.glob("e[0-9]_*.ipynb"))} if folder.is_dir() else {}


def describe_plan(points: list[Point], estimates: list[float]) -> list[str]:
    lines: list[str] = []
    by_exp: dict[str, tuple[int, float]] = {}
    for p, s in zip(points, estimates):
        n, total = by_exp.get(p.experiment, (0, 0.0))
        by_exp[p.experiment] = (n + 1, total + s)
    for name, (n, total) in by_exp.items():
        lines.append(f"  {name:<16} {n:3d} points  ~{clock(total)}")
    lines.append(f"  {'all':<16} {len(points):3d} points  ~{clock(sum(estimates))} (+ set-up, analysis, book ~2:30)")
    return lines


def run_experiments(
    profile: LabProfile, overrides: dict[str, Any] | None = None, **options: Unpack[RunOptions]
) -> LabResult:
    """Run every point of ``profile.experiments`` (those named in ``options["only"]``), their analyses and the book.

    ``options``: :class:`~swlab.run.options.RunOptions`, as for ``run_lab`` (``live_to`` is not used: the
    points print one line per stage).
    """
    only, build_book, verbose = options.get("only"), options.get("build_book", True), options.get("verbose", False)
    run_dir, root, say = options.get("run_dir", ""), options.get("root"), options.get("say", print)
    root = root or project_root()
    parameters = {**profile.parameters, **(overrides or {})}
    points = plan_points(profile.experiments, parameters, only, overrides)
    if not points:
        raise LabError(f"profile {profile.name!r} declares no experiment to run")
    pages = experiment_notebooks(root)
    analyses = list(dict.fromkeys(p.analysis for p in points))
    missing = [a for a in analyses if a not in pages]
    if missing:
        raise LabError(f"no analysis notebook for {missing} in notebooks/experiments/ (have {sorted(pages)})")
    books = [nb for nb in notebooks(root) if nb.name.startswith(SETUP_NOTEBOOKS + (TEARDOWN_NOTEBOOK,))]
    # the points' own settings (rate, duration, settle...) go to the points, the rest to the notebooks
    plan = plan_parameters({k: v for k, v in parameters.items() if k not in POINT_ONLY}, books)
    estimates = estimate_seconds(points)
    run = start_run(run_dir, profile=profile.name, parameters=parameters, root=root)
    run.save(ProfileRecord(name=profile.name, description=profile.description, source=profile.source))
    run.record(
        "experiments",
        {
            "declared": [vars(e) for e in profile.experiments if not only or e.name in only],
            "points": len(points),
            "estimate_s": round(sum(estimates), 1),
            "plan": [p.as_dict() for p in points],
        },
    )
    runner = RunnerMark(run.dir)
    runner.claim()  # every process of the run carries its directory (swlab.run.reaper)
    say(f"run {run.id} ({profile.name}) in {run.dir}\nplan: {len(points)} points")
    for line in clean_stale_runs(run.dir.parent, exclude=run.dir):
        say(line)
    for line in describe_plan(points, estimates):
        say(line)
    started = time.monotonic()
    stages: list[Stage] = []

    def execute(nbs: list[Path], params: dict[str, dict[str, Any]]) -> None:
        _notebooks(run, nbs, params, stages, say, verbose)

    try:
        try:
            execute([b for b in books if b.name.startswith(SETUP_NOTEBOOKS)], plan)
            if all(s.status == "ok" for s in stages):
                stages.append(_points_stage(run, points, parameters, say))
                run.record("stages", [vars(s) for s in stages])
                for analysis in analyses:
                    first = next(p.experiment for p in points if p.analysis == analysis)
                    execute([pages[analysis]], {pages[analysis].name: {"experiment": first}})
                if "discussion" in pages:
                    execute([pages["discussion"]], {})
            execute([b for b in books if b.name.startswith(TEARDOWN_NOTEBOOK)], plan)
        except KeyboardInterrupt as exc:  # Ctrl-C, in a notebook or in a point: as run_lab (swlab.run.cleanup)
            raise RunInterrupted(clean_after_interrupt(run, getattr(exc, "worker", None))) from None
        finally:
            safety_stop(run, say)
    finally:
        runner.release()
    result = LabResult(run=run, stages=stages)
    run.record("stages", [vars(s) for s in stages])
    if build_book and result.ok:
        result.book_html = build_book_stage(run, root, say)
    run.record("total_seconds", round(time.monotonic() - started, 2))
    print_summary(result, say)
    return result


def reanalyse(
    run: RunDir, root: Path | None = None, build_book: bool = True, say: Callable[[str], None] = print
) -> LabResult:
    """Re-run the experiments' pages (and the book) from the run directory alone: no cloud, no point re-run."""
    root = root or project_root()
    plan = (run.manifest().get("experiments") or {}).get("plan") or []
    if not plan:
        raise LabError(f"{run.dir} is not an experiments run (its manifest has no experiments plan)")
    pages = experiment_notebooks(root)
    stages: list[Stage] = []
    firsts: dict[str, str] = {}
    for point in plan:
        firsts.setdefault(point["analysis"], point["experiment"])
    for analysis, experiment in firsts.items():
        if analysis in pages:
            _notebooks(run, [pages[analysis]], {pages[analysis].name: {"experiment": experiment}}, stages, say, False)
    if "discussion" in pages:
        _notebooks(run, [pages["discussion"]], {}, stages, say, False)
    result = LabResult(run=run, stages=stages)
    if build_book and result.ok:
        result.book_html = build_book_stage(run, root, say)
    return result


def _notebooks(
    run: RunDir,
    books: list[Path],
    plan: dict[str, dict[str, Any]],
    stages: list[Stage],
    say: Callable[[str], None],
    verbose: bool,
) -> None:
    for nb in books:
        say(f"[{nb.stem}] running ...")
        params = {**plan.get(nb.name, {}), "run_dir": str(run.dir)}
        stage = execute_stage(nb, run, params, verbose=verbose, interruptible=True)
        say(
            f"[{nb.stem}] {stage.status} in {stage.seconds:.1f} s" + (f"\nFAILED: {stage.error}" if stage.error else "")
        )
        stages.append(stage)
        run.record("stages", [vars(s) for s in stages])


def _points_stage(run: RunDir, points: list[Point], parameters: dict[str, Any], say: Callable[[str], None]) -> Stage:
    stage = Stage(name="points", notebook="")
    started = time.monotonic()
    try:
        given = list(parameters.get("image_urls") or [])
        seeds = seed_images(run, given_urls=given)
        functions = deployed_outputs(run).functions
        run.record("default_memory_mb", {name: f.get("memory_mb") for name, f in functions.items()})
        models = run.load(ModelsRecord)
        body = LabPoints(
            run,
            seeds,
            placeholders=weights_substitutions(models.prepared or {}) if models else {},
            given_urls=given,
            deployed_key=json.dumps(
                {k: base_config(parameters)[k] for k in DEPLOY_KEYS},
                sort_keys=True,
                default=str,
            ),
            default_memory=dict(base_config(parameters)["memory_mb"] or {}),
        )
        records = run_points(run, points, body, say)
        failed = [r for r in records if r.status != "ok"]
        stage.status = "ok"
        if failed:
            say(f"{len(failed)} of {len(records)} points failed (recorded; the analyses show them)")
    except LabError as exc:
        stage.status, stage.error = "failed", str(exc)
    stage.seconds = round(time.monotonic() - started, 2)
    return stage
