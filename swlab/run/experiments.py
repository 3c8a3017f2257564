"""Experiments as data: a profile's ``experiments:`` planned into points, each with its resolved configuration.

Pure (no I/O, no cloud): :func:`parse_experiments` checks what a profile declares,
:func:`plan_points` expands axes × values × repetitions into :class:`Point` s in
run order, :func:`estimate_seconds` says how long they will take.

An experiment in a profile::

    experiments:
      - name: memory                      # unique; names the book page's data
        analysis: memory                  # which analysis/notebook reads it (default: the name)
        mode: load                        # "load": JMeter, open model; "cold": forced cold starts, one by one
        repetitions: 1
        axes:                             # dotted paths into the point's configuration → values
          memory_mb.*: [128, 256, 512, 1024, 1769, 3008]
        set: {workflows: [wf1, wf2], duration_s: 12}   # fixed for every point of this experiment
        verify: {workflows: [wf2], duration_s: 10}     # a memory sweep only: then measure the chosen sizes

``verify`` (an experiment with the axis ``memory_mb.*``) appends two points after the sweep's:
``memory_choice`` ``balanced`` (each function at the size the sweep's points make the balanced
choice, resolved when the point runs: :func:`swlab.run.sweep.chosen_memory`) and ``default``
(the sizes the stack had before the sweep), with the experiment's ``set`` and then these settings:
the whole workflow measured at the chosen sizes against the defaults, not only estimated.

A point's configuration starts from :data:`POINT_DEFAULTS`, then the profile's
parameters of the same names, then the experiment's ``set``, then the command
line's overrides (``-p``), then its axis values. An axis may name any key of the configuration, or a key inside one of
its mappings (``deploy_options.inference``, ``memory_mb.resnet``,
``deploy_options.function_overrides.*.architecture``): the deploy options
other issues add become axes without a change here. Axes combine as a product;
the first axis varies slowest; repetitions are the outermost loop, so a
repetition runs every combination before the next one starts.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from swlab.run.paths import LabError

MODES = ("load", "cold")
# The configuration of a point, before the profile, the experiment's ``set`` and the axes.
POINT_DEFAULTS: dict[str, Any] = {
    "workflow_type": "EXPRESS",  # 01_deploy
    "memory_mb": {},  # 01_deploy: {"*": MB} or per function
    "deploy_options": {},  # 01_deploy: any swlab.provision.options.DeployOptions field
    "workflows": ["wf1", "wf2"],  # which workflows the point loads, in order
    "rate_per_s": 1.0,  # mode load: JMeter arrivals per second (open model)
    "duration_s": 10,  # mode load: seconds of arrivals per workflow
    "timeout_s": 35,  # mode load: JMeter's response timeout, and the longest it waits after the last arrival
    "warmup_requests": 1,  # mode load: requests sent one by one before the measured load (cold starts out)
    "cold_requests": 1,  # mode cold: requests per workflow after every function was forced cold
    "warm_requests": 2,  # mode cold: requests per workflow after those, on the now-warm environments
    "settle_s": 2.0,  # wait for logs before collecting (AWS: 60 or more)
    "memory_choice": None,  # a sweep's check: deploy the sizes chosen from its points (balanced...) or "default"
    "drain_timeout_s": 120.0,  # mode load: at most this long for Workflow 2's executions to end before collecting
}
DEPLOY_KEYS = ("workflow_type", "memory_mb", "deploy_options")  # what a deploy depends on
EXPERIMENT_KEYS = {"name", "title", "analysis", "mode", "repetitions", "axes", "set", "description", "verify"}
# A memory sweep's ``verify:`` adds these points after its own: the sizes chosen from the sweep, then the defaults.
VERIFY_CHOICES = ("balanced", "default")
MEMORY_CHOICES = ("balanced", "cheapest", "fastest", "default")
# Rough costs (seconds) on this project's 2-core machine, for the estimate printed before a run.
ESTIMATE_S = {"deploy": 6.0, "jmeter_start": 4.0, "collect": 3.0, "provisioned_init": 30.0}
ESTIMATE_REQUEST_S = {"wf1": 0.3, "wf2": 1.0}
ESTIMATE_COLD_REQUEST_S = {"wf1": 1.0, "wf2": 15.0}  # torch inits in parallel on 2 cores: 10-30 s
ESTIMATE_COLD_PROVISIONED_S = {"wf1": 1.0, "wf2": 4.0}  # the models provisioned: only preprocessing starts cold


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    analysis: str
    mode: str
    repetitions: int
    axes: dict[str, list[Any]]
    set: dict[str, Any]
    description: str = ""
    # settings of the check points after a memory sweep (VERIFY_CHOICES): None, no check
    verify: dict[str, Any] | None = None

    @property
    def combinations(self) -> int:
        n = 1
        for values in self.axes.values():
            n *= len(values)
        return n


@dataclass(frozen=True)
class Point:
    """One point of an experiment: its place in the run and its resolved configuration."""

    index: int  # 1-based, in run order across all experiments
    experiment: str
    analysis: str
    mode: str
    repetition: int  # 1-based
    axes: dict[str, Any]  # axis path → this point's value
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def deploy_config(self) -> dict[str, Any]:
        return {k: self.config[k] for k in DEPLOY_KEYS}

    @property
    def deploy_key(self) -> str:
        """Equal for two points that need the same deployed stack."""
        return json.dumps(self.deploy_config, sort_keys=True, default=str)

    def label(self) -> str:
        axes = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in self.axes.items())
        return f"{self.experiment}" + (f" {axes}" if axes else "") + f" (rep {self.repetition})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "experiment": self.experiment,
            "analysis": self.analysis,
            "mode": self.mode,
            "repetition": self.repetition,
            "axes": self.axes,
            "config": self.config,
        }


def parse_experiments(declared: Any) -> list[Experiment]:
    """The ``experiments:`` of a profile, checked; a mistake is a :class:`LabError` naming it."""
    if declared is None:
        return []
    if not isinstance(declared, list):
        raise LabError("experiments: a list of experiments, each a mapping with a name")
    out: list[Experiment] = []
    for i, item in enumerate(declared, 1):
        if not isinstance(item, dict) or not item.get("name"):
            raise LabError(f"experiment #{i}: a mapping with at least a name")
        name = str(item["name"])
        unknown = set(item) - EXPERIMENT_KEYS
        if unknown:
            raise LabError(f"experiment {name!r}: unknown keys {sorted(unknown)} (allowed: {sorted(EXPERIMENT_KEYS)})")
        mode = str(item.get("mode", "load"))
        if mode not in MODES:
            raise LabError(f"experiment {name!r}: mode must be one of {MODES}, got {mode!r}")
        reps = item.get("repetitions", 1)
        if not isinstance(reps, int) or isinstance(reps, bool) or reps < 1:
            raise LabError(f"experiment {name!r}: repetitions must be an integer >= 1, got {reps!r}")
        axes = item.get("axes") or {}
        if not isinstance(axes, dict):
            raise LabError(f"experiment {name!r}: axes is a mapping of path → list of values")
        for path, values in axes.items():
            if not isinstance(values, list) or not values:
                raise LabError(f"experiment {name!r}: axis {path!r} needs a non-empty list of values")
            _check_path(name, str(path))
        fixed = item.get("set") or {}
        if not isinstance(fixed, dict):
            raise LabError(f"experiment {name!r}: set is a mapping of path → value")
        for path in fixed:
            _check_path(name, str(path))
        verify = item.get("verify")
        if verify is not None:
            if not isinstance(verify, dict) or "memory_mb.*" not in axes:
                raise LabError(
                    f"experiment {name!r}: verify is a mapping of settings, for a sweep with the axis memory_mb.*"
                )
            for path in verify:
                _check_path(name, str(path))
        out.append(
            Experiment(
                name=name,
                title=str(item.get("title", name)),
                analysis=str(item.get("analysis", name)),
                mode=mode,
                repetitions=reps,
                axes={str(k): list(v) for k, v in axes.items()},
                set=dict(fixed),
                description=str(item.get("description", "")),
                verify=dict(verify) if verify is not None else None,
            )
        )
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise LabError(f"experiment names must be unique: {names}")
    return out


def _check_path(experiment: str, path: str) -> None:
    top = path.split(".", 1)[0]
    if top not in POINT_DEFAULTS:
        raise LabError(f"experiment {experiment!r}: {path!r} is not a point setting; known: {sorted(POINT_DEFAULTS)}")
    if "." in path and not isinstance(POINT_DEFAULTS[top], dict):
        raise LabError(f"experiment {experiment!r}: {top!r} is not a mapping, so {path!r} cannot name a key in it")


def set_path(config: dict[str, Any], path: str, value: Any) -> None:
    """``config`` with ``value`` at the dotted ``path`` (mappings created on the way; a copy of ``value``)."""
    keys = path.split(".")
    node = config
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = copy.deepcopy(value)


def base_config(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """:data:`POINT_DEFAULTS` with the profile's parameters of the same names."""
    config = copy.deepcopy(POINT_DEFAULTS)
    for key in POINT_DEFAULTS:
        if key in parameters:
            config[key] = copy.deepcopy(parameters[key])
    return config


def plan_points(
    experiments: list[Experiment],
    parameters: Mapping[str, Any] | None = None,
    only: list[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[Point]:
    """Every point of ``experiments`` (those named in ``only``, if given), in run order, numbered from 1.

    ``overrides`` (the command line's ``-p``) win over the experiments' ``set`` (not over their axes):
    ``-p settle_s=60`` on AWS applies to every point.
    """
    chosen = [e for e in experiments if not only or e.name in only]
    if only and len(chosen) != len(set(only)):
        missing = sorted(set(only) - {e.name for e in experiments})
        raise LabError(f"no experiment {missing}; declared: {[e.name for e in experiments]}")
    base = base_config(parameters or {})
    points: list[Point] = []
    for exp in chosen:
        start = copy.deepcopy(base)
        for path, value in exp.set.items():
            set_path(start, path, value)
        for key, value in (overrides or {}).items():
            if key in POINT_DEFAULTS:
                start[key] = copy.deepcopy(value)
        paths = list(exp.axes)
        for rep in range(1, exp.repetitions + 1):
            for values in itertools.product(*(exp.axes[p] for p in paths)):
                config = copy.deepcopy(start)
                for path, value in zip(paths, values):
                    set_path(config, path, value)
                points.append(_point(exp, len(points) + 1, rep, dict(zip(paths, copy.deepcopy(list(values)))), config))
        for choice in VERIFY_CHOICES if exp.verify is not None else ():
            config = copy.deepcopy(start)
            for path, value in (exp.verify or {}).items():
                set_path(config, path, value)
            config.update(memory_mb={}, memory_choice=choice)  # the sizes are chosen when the point runs
            points.append(_point(exp, len(points) + 1, 1, {"memory_choice": choice}, config))
    return points


def _point(exp: Experiment, index: int, repetition: int, axes: dict[str, Any], config: dict[str, Any]) -> Point:
    return Point(
        index=index,
        experiment=exp.name,
        analysis=exp.analysis,
        mode=exp.mode,
        repetition=repetition,
        axes=axes,
        config=config,
    )


def estimate_point_seconds(point: Point, deploys: bool) -> float:
    """A rough duration of one point on this project's 2-core machine (local cloud)."""
    c = point.config
    provisioned = bool((c.get("deploy_options") or {}).get("provisioned_concurrency"))
    seconds = ESTIMATE_S["deploy"] + (ESTIMATE_S["provisioned_init"] if provisioned else 0.0) if deploys else 0.0
    for wf in c["workflows"]:
        per = ESTIMATE_REQUEST_S.get(wf, 1.0)
        cold = (ESTIMATE_COLD_PROVISIONED_S if provisioned and point.mode == "cold" else ESTIMATE_COLD_REQUEST_S).get(
            wf, 5.0
        )
        if point.mode == "cold":
            seconds += c["cold_requests"] * cold + c["warm_requests"] * per
        else:
            seconds += c["warmup_requests"] * (cold if deploys else per)
            seconds += ESTIMATE_S["jmeter_start"] + float(c["duration_s"]) + float(c["timeout_s"])
    return seconds + float(c["settle_s"]) + ESTIMATE_S["collect"]


def estimate_seconds(points: list[Point]) -> list[float]:
    """Each point's estimate, counting a deploy wherever the stack must change."""
    out, last = [], None
    for p in points:
        # a memory check's sizes are chosen when it runs: count a deploy
        out.append(estimate_point_seconds(p, deploys=p.deploy_key != last or bool(p.config.get("memory_choice"))))
        last = p.deploy_key
    return out
