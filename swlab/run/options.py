"""The keyword options of a lab run, shared by :func:`swlab.run.stages.run_lab` and
:func:`swlab.run.sweep.run_experiments` (one declaration, not one signature per runner).

``run_experiments(profile, overrides, **options)`` takes them as ``Unpack[RunOptions]``;
``run_lab`` still spells them out (its module is being changed elsewhere) and can adopt
this declaration the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TextIO, TypedDict


class RunOptions(TypedDict, total=False):
    """Every option is optional; the runners' defaults are in brackets."""

    run_dir: str | Path  # where the run goes [runs/<new id>]
    only: list[str] | None  # notebook prefixes (run_lab) or experiment names (run_experiments) [all]
    build_book: bool  # build the book at the end [True]
    verbose: bool  # the notebooks' output in the terminal [False]
    root: Path | None  # the project's root [swlab.run.paths.project_root()]
    say: Callable[[str], None]  # where the progress lines go [print]
    live_to: TextIO | None  # run_lab: where the running stage's live line goes [the terminal]
