"""Lab profiles: named sets of notebook parameters (``profiles/<name>.yaml``), and who receives which.

A :class:`LabProfile` is a YAML or JSON file with a name, a description and
``parameters`` (and optionally ``experiments``, see :mod:`swlab.run.experiments`); each notebook receives the parameters its ``parameters`` cell
declares (papermill), plus ``run_dir``. A parameter that no notebook declares
is an error, so a typo cannot pass silently. (Not to be confused with a load
test's :class:`swlab.loadtest.plans.LoadProfile`, which one of these parameters
sets, nor with :class:`swlab.settings.Settings`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from swlab.run.experiments import Experiment, parse_experiments
from swlab.run.paths import LabError, profiles_dir

COMMON_PARAMETERS = ("run_dir",)  # passed to every notebook that declares it


@dataclass(frozen=True)
class LabProfile:
    name: str
    description: str
    parameters: dict[str, Any]
    source: str = ""
    experiments: list[Experiment] = field(default_factory=list)  # a sweep (swlab.run.experiments); empty: none


def load_profile(name_or_path: str, root: Path | None = None) -> LabProfile:
    """A profile by name (``profiles/<name>.yaml|.yml|.json``) or by path."""
    path = Path(name_or_path)
    if not path.is_file():
        candidates = [profiles_dir(root) / f"{name_or_path}{ext}" for ext in (".yaml", ".yml", ".json")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            known = sorted(p.stem for p in profiles_dir(root).glob("*.y*ml"))
            raise LabError(f"no profile {name_or_path!r}: not a file, and not one of {known}")
        path = found
    data = yaml.safe_load(path.read_text()) or {}  # YAML is a superset of JSON
    if not isinstance(data, dict) or not isinstance(data.get("parameters", {}), dict):
        raise LabError(f"{path}: a profile is a mapping with a 'parameters' mapping")
    unknown = set(data) - {"name", "description", "parameters", "experiments"}
    if unknown:
        raise LabError(
            f"{path}: unknown profile keys {sorted(unknown)} (allowed: name, description, parameters, experiments)"
        )
    try:
        experiments = parse_experiments(data.get("experiments"))
    except LabError as exc:
        raise LabError(f"{path}: {exc}") from None
    return LabProfile(
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        parameters=dict(data.get("parameters") or {}),
        source=str(path),
        experiments=experiments,
    )


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``["rate_per_s=2", "target=aws"]`` → ``{"rate_per_s": 2, "target": "aws"}`` (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise LabError(f"parameter {item!r} is not NAME=VALUE")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def declared_parameters(notebook: Path) -> dict[str, dict[str, str]]:
    """The parameters a notebook's ``parameters`` cell declares: name → {type, default, help}."""
    import papermill as pm  # heavy: only when a notebook is inspected

    return {
        name: {"type": p["inferred_type_name"], "default": p["default"], "help": p["help"]}
        for name, p in pm.inspect_notebook(str(notebook)).items()
    }


def plan_parameters(parameters: dict[str, Any], books: list[Path]) -> dict[str, dict[str, Any]]:
    """Per notebook, the subset of ``parameters`` it declares. Undeclared parameters are an error."""
    declared = {nb.name: declared_parameters(nb) for nb in books}
    known = set().union(*declared.values()) if declared else set()
    stray = sorted(set(parameters) - known)
    if stray:
        raise LabError(f"parameters {stray} are declared by no notebook; known: {sorted(known)}")
    return {name: {k: v for k, v in parameters.items() if k in names} for name, names in declared.items()}
