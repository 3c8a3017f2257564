"""Command line of the lab's batch runner: ``scripts/run-lab`` = ``python -m swlab.run``.

``run`` (the default) executes the notebooks for a profile and builds the book (a profile
with ``experiments:`` runs its points instead, :mod:`swlab.run.sweep`; ``--plan`` prints them),
``book`` (re)builds a run's book, ``prepare`` writes parameterized notebooks for
nbval, ``params`` lists every notebook's parameters and the profiles.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from swlab.run import book
from swlab.run.cleanup import RunInterrupted
from swlab.run.experiments import estimate_seconds, plan_points
from swlab.run.paths import LabError, notebooks, profiles_dir
from swlab.run.profiles import declared_parameters, load_profile, parse_assignments
from swlab.run.rundir import open_run
from swlab.run.services import serve_images
from swlab.run.stages import prepare_notebooks, run_lab
from swlab.run.sweep import describe_plan, reanalyse, run_experiments

INTERRUPTED = 130  # a shell's exit status after SIGINT (128 + 2)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as exc:  # Ctrl-C during a run: cleaned up (swlab.run.cleanup); one line
        print(exc.line, file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run-lab", description="Run the lab's notebooks with papermill and build the book."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,book,analyse,prepare,params}")
    run = sub.add_parser("run", help="run the notebooks for a profile, then build the book (the default)")
    run.add_argument(
        "--profile", default="mission", help="profile name in profiles/ or a YAML/JSON path (default mission)"
    )
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter (value read as YAML), repeatable",
    )
    run.add_argument("--target", choices=("local", "aws"), help="shortcut for -p target=...")
    run.add_argument("--region", help="shortcut for -p region=...")
    run.add_argument("--run-dir", default="", help="run directory (default runs/<run_id>)")
    run.add_argument(
        "--only",
        action="append",
        metavar="PREFIX",
        help="run only notebooks starting with PREFIX (repeatable, e.g. --only 00 --only 08)",
    )
    run.add_argument(
        "--experiment",
        action="append",
        metavar="NAME",
        help="an experiments profile: run only this experiment (repeatable)",
    )
    run.add_argument(
        "--plan", action="store_true", help="an experiments profile: print its points and estimate, run nothing"
    )
    run.add_argument("--no-book", action="store_true", help="do not build the book")
    run.add_argument("-v", "--verbose", action="store_true", help="stream the notebooks' output")
    run.set_defaults(func=_cmd_run)
    bk = sub.add_parser("book", help="build the book from an executed run (default: the latest)")
    bk.add_argument("run_dir", nargs="?", default="")
    bk.add_argument(
        "--check", action="store_true", help="open the results pages in headless Chromium; fail on a missing figure"
    )
    bk.set_defaults(func=_cmd_book)
    ra = sub.add_parser(
        "analyse", help="an experiments run: re-run its pages from the run directory alone, rebuild the book"
    )
    ra.add_argument("run_dir", nargs="?", default="")
    ra.add_argument("--no-book", action="store_true")
    ra.set_defaults(func=_cmd_analyse)
    pr = sub.add_parser("prepare", help="write parameterized, unexecuted notebooks into a run directory (for nbval)")
    pr.add_argument("--profile", default="ci")
    pr.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    pr.add_argument("run_dir", help="the run directory to create")
    pr.set_defaults(func=_cmd_prepare)
    im = sub.add_parser("image-server")  # internal: the detached process of services.start_image_server
    im.add_argument("--state-file", type=Path, required=True)
    im.set_defaults(func=_cmd_image_server)
    ps = sub.add_parser("params", help="list each notebook's parameters and each profile's values")
    ps.set_defaults(func=_cmd_params)
    return p


def _cmd_run(args: argparse.Namespace) -> int:
    overrides = parse_assignments(args.param)
    overrides.update({k: v for k, v in (("target", args.target), ("region", args.region)) if v})
    profile = load_profile(args.profile)
    if profile.experiments:
        if args.only:
            raise LabError("--only selects notebooks of a profile without experiments; use --experiment NAME")
        if args.plan:
            points = plan_points(profile.experiments, {**profile.parameters, **overrides}, args.experiment, overrides)
            estimates = estimate_seconds(points)
            for p, sec in zip(points, estimates):
                print(f"{p.index:4d}  {p.label():<60} ~{sec:5.0f} s")
            print("\n".join(describe_plan(points, estimates)))
            return 0
        result = run_experiments(
            profile,
            overrides,
            run_dir=args.run_dir,
            only=args.experiment,
            build_book=not args.no_book,
            verbose=args.verbose,
        )
        return 0 if result.ok and (args.no_book or result.book_html) else 1
    if args.experiment or args.plan:
        raise LabError(f"profile {profile.name!r} declares no experiments (--experiment and --plan are for those)")
    result = run_lab(
        profile,
        overrides,
        run_dir=args.run_dir,
        only=args.only,
        build_book=not args.no_book,
        verbose=args.verbose,
    )
    return 0 if result.ok and (args.no_book or result.book_html) else 1


def _cmd_book(args: argparse.Namespace) -> int:
    run = open_run(args.run_dir)
    started = time.monotonic()
    try:
        html = book.build_book(run)
        print(f"built in {time.monotonic() - started:.1f} s: {html}")
        if args.check:
            for page in book.check_pages(run):
                print(page.summary())
    except book.BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_analyse(args: argparse.Namespace) -> int:
    result = reanalyse(open_run(args.run_dir), build_book=not args.no_book)
    for stage in result.failed:
        print(f"FAILED: {stage.error}", file=sys.stderr)
    return 0 if result.ok and (args.no_book or result.book_html) else 1


def _cmd_prepare(args: argparse.Namespace) -> int:
    run = prepare_notebooks(load_profile(args.profile), parse_assignments(args.param), run_dir=args.run_dir)
    print(run.notebooks_dir)
    return 0


def _cmd_image_server(args: argparse.Namespace) -> int:
    serve_images(args.state_file)
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    for nb in notebooks():
        print(nb.name)
        for name, p in declared_parameters(nb).items():
            print(f"  {name}: {p['type']} = {p['default']}  # {p['help']}")
    for path in sorted(profiles_dir().glob("*.y*ml")):
        prof = load_profile(str(path))
        print(f"profile {prof.name}: {json.dumps(prof.parameters)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
