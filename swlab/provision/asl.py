"""State machine definitions: load, substitute placeholders, validate.

The files in ``asl/`` are valid JSON at rest; placeholders such as
``"${FetchImageArn}"`` appear only inside strings. :func:`load_definition`
parses the file first, substitutes inside the parsed strings (so a value can
never break the JSON), and refuses a placeholder without a value, a value
without a placeholder (a typo on either side) and anything left over.
:func:`validate` checks the structure: every ``StartAt``, ``Next``,
``Default``, ``Choices[].Next`` and ``Catch[].Next`` names a state of its own
scope (a Parallel branch is its own scope), every state is reachable, and
every Task has ``TimeoutSeconds`` and a ``Retry`` that, for Lambda tasks,
covers Lambda's service errors and throttling and an environment's transient failures.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

ASL_DIR = Path(__file__).resolve().parents[2] / "asl"
CLASSIFY = ASL_DIR / "classify.asl.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")
LAMBDA_SERVICE_ERRORS = frozenset(
    {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    }
)
# What a Lambda environment's failure is named (killed, timed out, out of memory, a runtime error, an
# AWS SDK error the function let through): transient under faults, so every Lambda task retries them.
LAMBDA_TRANSIENT_ERRORS = frozenset(
    {"Lambda.Unknown", "Sandbox.Timedout", "Runtime.ExitError", "Runtime.OutOfMemory", "Runtime.Unknown", "ClientError"}
)
TERMINAL = {"Succeed", "Fail"}


class AslError(ValueError):
    """A definition that cannot be deployed; ``problems`` lists every reason found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _strings(node: Any, keys: bool = False) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            if keys:
                yield key
            yield from _strings(value, keys)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, keys)


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value)


def placeholders(definition: Any) -> set[str]:
    """The placeholder names used in the string values of a parsed definition."""
    return {name for text in _strings(definition) for name in PLACEHOLDER.findall(text)}


def _substitute(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], node)
    if isinstance(node, Mapping):
        return {key: _substitute(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(value, values) for value in node]
    return node


def substitute(definition: Mapping[str, Any], substitutions: Mapping[str, str]) -> dict[str, Any]:
    """Fill every placeholder; AslError on missing values, unused values, placeholders in keys, leftovers."""
    problems = [f"placeholder in a key: {key!r}" for key in _keys(definition) if "${" in key]
    used = placeholders(definition)
    problems += [f"no value for placeholder ${{{name}}}" for name in sorted(used - set(substitutions))]
    problems += [f"substitution {name!r} matches no placeholder" for name in sorted(set(substitutions) - used)]
    problems += [
        f"value for {name!r} is not a non-empty string"
        for name, value in sorted(substitutions.items())
        if not isinstance(value, str) or not value
    ]
    if problems:
        raise AslError(problems)
    result = _substitute(definition, substitutions)
    leftovers = sorted({text for text in _strings(result, keys=True) if "${" in text})
    if leftovers:
        raise AslError([f"left-over placeholder syntax after substitution: {text!r}" for text in leftovers])
    return result


def parse(path: Path | str = CLASSIFY, preprocessing: str = "steps") -> dict[str, Any]:
    """The definition at ``path`` (valid JSON at rest), in its ``preprocessing`` variant (:func:`variant`)."""
    try:
        definition = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise AslError([f"{path} is not valid JSON at rest: {exc}"]) from None
    return variant(definition, preprocessing)


def load_definition(
    path: Path | str = CLASSIFY,
    substitutions: Mapping[str, str] | None = None,
    check: bool = True,
    preprocessing: str = "steps",
) -> dict[str, Any]:
    """Parse ``path`` (must be valid JSON as it is), make its variant, substitute, validate; return it."""
    definition = parse(path, preprocessing)
    result = substitute(definition, substitutions or {})
    if check:
        problems = validate(result)
        if problems:
            raise AslError(problems)
    return result


def render(definition: Mapping[str, Any]) -> str:
    """The definition string CreateStateMachine/UpdateStateMachine take."""
    return json.dumps(definition, indent=2)


def _targets(state: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(where, name) of every transition a state makes within its scope."""
    found = [("Next", state["Next"])] if "Next" in state else []
    if "Default" in state:
        found.append(("Default", state["Default"]))
    found += [(f"Choices[{i}].Next", c.get("Next")) for i, c in enumerate(state.get("Choices", []))]
    found += [(f"Catch[{i}].Next", c.get("Next")) for i, c in enumerate(state.get("Catch", []))]
    return found


def _task_problems(name: str, state: Mapping[str, Any]) -> list[str]:
    problems = []
    if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
        problems.append(f"Task {name} has no TimeoutSeconds")
    retry = state.get("Retry") or []
    if not retry or any(not r.get("ErrorEquals") for r in retry):
        problems.append(f"Task {name} has no Retry (or a retrier without ErrorEquals)")
    resource = str(state.get("Resource", ""))
    if ":lambda:" in resource:
        covered = {e for r in retry for e in r.get("ErrorEquals", [])}
        if "States.ALL" not in covered and not LAMBDA_SERVICE_ERRORS <= covered:
            problems.append(f"Task {name} does not retry {sorted(LAMBDA_SERVICE_ERRORS - covered)}")
        if "States.ALL" not in covered and not LAMBDA_TRANSIENT_ERRORS <= covered:
            problems.append(f"Task {name} does not retry {sorted(LAMBDA_TRANSIENT_ERRORS - covered)}")
    return problems


def _state_problems(scope: str, name: str, state: Any, names: set[str]) -> list[str]:
    if not isinstance(state, Mapping) or "Type" not in state:
        return [f"{scope}{name}: not a state object with a Type"]
    kind, problems = state["Type"], []
    for where, target in _targets(state):
        if target not in names:
            problems.append(f"{scope}{name}.{where} -> {target!r} is not a state in this scope")
    ends = state.get("End") is True
    if kind not in TERMINAL | {"Choice"} and ends == ("Next" in state):
        problems.append(f"{scope}{name}: needs exactly one of Next or End")
    if kind == "Choice" and not state.get("Choices"):
        problems.append(f"{scope}{name}: Choice without Choices")
    if kind == "Task":
        problems += [f"{scope}{p}" for p in _task_problems(name, state)]
    for i, branch in enumerate(state.get("Branches", [])):
        problems += validate(branch, scope=f"{scope}{name}.Branches[{i}].")
    for key in ("ItemProcessor", "Iterator"):
        if key in state:
            problems += validate(state[key], scope=f"{scope}{name}.{key}.")
    return problems


def validate(definition: Mapping[str, Any], scope: str = "") -> list[str]:
    """Every structural problem of a (sub-)definition; an empty list means valid."""
    states = definition.get("States")
    if not isinstance(states, Mapping) or not states:
        return [f"{scope}States is missing or empty"]
    names = set(states)
    problems = (
        []
        if definition.get("StartAt") in names
        else [f"{scope}StartAt -> {definition.get('StartAt')!r} is not a state"]
    )
    for name, state in states.items():
        problems += _state_problems(scope, name, state, names)
    reachable, todo = set(), [definition.get("StartAt")]
    while todo:
        current = todo.pop()
        if current in names and current not in reachable:
            reachable.add(current)
            todo += [target for _, target in _targets(states[current])]
    problems += [f"{scope}{name} is unreachable from StartAt" for name in sorted(names - reachable)]
    return problems


def function_placeholder(function: str) -> str:
    """The placeholder of a function's ARN: ``fetch_image`` -> ``FetchImageArn``."""
    return "".join(part.capitalize() for part in function.split("_")) + "Arn"


def classify_substitutions(
    function_arns: Mapping[str, str], table_name: str, preprocessing: str = "steps"
) -> dict[str, str]:
    """Substitutions for classify.asl.json (in its ``preprocessing`` variant) from {function folder name: ARN}
    and the table name.

    Functions the definition does not use (e.g. ``ingest``) are left out.
    """
    used = placeholders(parse(CLASSIFY, preprocessing))
    values = {function_placeholder(name): arn for name, arn in function_arns.items()}
    return {"TableName": table_name, **{k: v for k, v in values.items() if k in used}}


def classify_functions(lambdas_dir: Path | None = None, preprocessing: str = "steps") -> list[str]:
    """The function folders whose ARNs classify.asl.json (in its ``preprocessing`` variant) uses."""
    lambdas_dir = lambdas_dir or ASL_DIR.parent / "lambdas"
    used = placeholders(parse(CLASSIFY, preprocessing))
    return sorted(
        p.parent.name for p in Path(lambdas_dir).glob("*/function.json") if function_placeholder(p.parent.name) in used
    )


# -- variants: generated from the one definition, never a second copy of it ------------------------------

PREPROCESSING = ("steps", "fused")
# The fused variant: these Task states (in this order, each the Next of the one before) become one.
PREPROCESSING_STEPS = ("Grayscale", "Flip", "Rotate", "Resize")
FUSED_STATE, FUSED_FUNCTION, FUSED_RESULT = "Preprocess", "preprocess", "preprocess"


def variant(definition: Mapping[str, Any], preprocessing: str = "steps") -> dict[str, Any]:
    """``definition`` as deployed for ``preprocessing``: ``steps`` (as written) or ``fused`` (:func:`fuse_steps`)."""
    if preprocessing not in PREPROCESSING:
        raise AslError([f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}"])
    if preprocessing == "steps":
        return copy.deepcopy(dict(definition))
    return fuse_steps(definition, PREPROCESSING_STEPS, FUSED_STATE, FUSED_FUNCTION, FUSED_RESULT)


def fuse_steps(
    definition: Mapping[str, Any], steps: Sequence[str], name: str, function: str, result: str
) -> dict[str, Any]:
    """Replace the chain of Lambda Task states ``steps`` by one Task ``name`` invoking ``function``.

    The new state is the first step's (its retries, catches, timeout, selector), invoking
    ``${<Function>Arn}`` on the first step's input, with ``ResultPath`` ``$.<result>`` and the last
    step's ``Next``. Every transition into the first step goes to it; the last step's result path
    (``$.resize``) becomes ``$.<result>``; payload fields that read an intermediate step's result
    (``"grayscale.$": "$.grayscale.ms"``) are dropped, and the last step's (``"resize.$"``) is renamed.
    """
    out = copy.deepcopy(dict(definition))
    states = out.get("States", {})
    missing = [s for s in steps if s not in states]
    chained = all(states[a].get("Next") == b for a, b in zip(steps, steps[1:])) if not missing else False
    if missing or not chained:
        raise AslError([f"cannot fuse {list(steps)}: " + (f"missing {missing}" if missing else "not a chain")])
    first, last = states[steps[0]], states[steps[-1]]
    results = [states[s]["ResultPath"] for s in steps]  # "$.grayscale", ..., "$.resize"
    fused = copy.deepcopy(first)
    fused["Parameters"]["FunctionName"] = "${" + function_placeholder(function) + "}"
    fused["Comment"] = f"{' -> '.join(s.lower() for s in steps)} in one function: processed/<id>/{result}.png"
    fused["ResultPath"], fused["Next"] = f"$.{result}", last["Next"]
    out["States"] = states = {
        (name if key == steps[0] else key): (fused if key == steps[0] else state)
        for key, state in states.items()
        if key not in steps[1:]
    }
    for state in states.values():
        for holder, key in _transitions(state):
            if holder[key] == steps[0]:
                holder[key] = name
    if out.get("StartAt") == steps[0]:
        out["StartAt"] = name
    return _rewrite_paths(out, results[:-1], results[-1], f"$.{result}")


def _transitions(state: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    for key in ("Next", "Default"):
        if key in state:
            yield state, key
    for choice in state.get("Choices", []):
        if "Next" in choice:
            yield choice, "Next"
    for catch in state.get("Catch", []):
        yield catch, "Next"


def _rewrite_paths(node: Any, dropped: Sequence[str], old: str, new: str) -> Any:
    def reads(value: Any, path: str) -> bool:
        return isinstance(value, str) and (
            value == path or value.startswith(path + ".") or value.startswith(path + "[")
        )

    if isinstance(node, list):
        return [_rewrite_paths(v, dropped, old, new) for v in node]
    if not isinstance(node, Mapping):
        return new + node[len(old) :] if reads(node, old) else node
    out = {}
    for key, value in node.items():
        if key.endswith(".$") and any(reads(value, path) for path in dropped):
            continue
        if key.endswith(".$") and reads(value, old) and key[:-2] == old.removeprefix("$."):
            key = new.removeprefix("$.") + ".$"
        out[key] = _rewrite_paths(value, dropped, old, new)
    return out
