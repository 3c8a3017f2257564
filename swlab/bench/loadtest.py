"""The load-test benchmark (scripts/bench-loadtest): Workflow 1 with a URL list, then Workflow 2 with
the image ids Workflow 1 returned, and the figures of both runs.

``scripts/bench-loadtest`` (:func:`main`)::

  scripts/bench-loadtest --endpoint-file endpoint.json --urls image_urls.csv [--mode sync|async]
  scripts/bench-loadtest --against-stub --duration 30 [--mode async]   # harness check, no lab stack needed

Workflow 2's ``--mode``: ``sync`` (the default) posts /classify (one answer per request); ``async``
posts /classifications (202) and polls GET /images/{id} every ``--poll-ms`` until the terminal status
(a sample is submit -> terminal). The endpoint file is JSON: {"url": "http://127.0.0.1:PORT/BASE",
"api_key": "..."}. Prints one ``name: value`` line per figure: ``wf2_mode``, then <wf>_samples_planned,
<wf>_samples, <wf>_max_arrival_gap_s (after the first 5 s), <wf>_error_pct, <wf>_p50_ms, <wf>_p95_ms,
<wf>_p99_ms for wf1 and wf2, then jmeter_startup_s (launch -> first sample, incl. warm-up).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from swlab.loadtest.install import JMeterInstall, JMeterSetupError, ensure_jmeter
from swlab.loadtest.jtl import parse_jtl, returned_ids, summarize_jtl
from swlab.loadtest.plans import MODES, WORKFLOWS, ApiEndpoint, LoadProfile, write_data_file
from swlab.loadtest.progress import Progress, TerminalProgress
from swlab.loadtest.runner import JMeterRunError, run_workflow
from swlab.loadtest.stub import StubApi


def bench_loadtest(
    endpoint: ApiEndpoint,
    urls_file: Path,
    runs_dir: Path,
    profile: LoadProfile = LoadProfile(),
    *,
    install: JMeterInstall | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> dict[str, float]:
    """Workflow 1 with ``urls_file``, then Workflow 2 with the image ids Workflow 1 returned.

    Returns the benchmark figures: ``wf1_*``/``wf2_*`` from :func:`summarize_jtl` and
    ``jmeter_startup_s`` (launch -> first sample, the larger of the two runs; it includes
    the plans' warm-up pause). Run directories: ``runs_dir/wf1`` and ``runs_dir/wf2``.
    """
    install = install or ensure_jmeter()
    figures: dict[str, float] = {}
    wf1 = run_workflow("wf1", endpoint, urls_file, Path(runs_dir) / "wf1", profile, install=install, progress=progress)
    df1 = parse_jtl(wf1.jtl)
    ids = returned_ids(df1)
    if not ids:
        raise JMeterRunError(f"Workflow 1 returned no image ids (see {wf1.jtl}); Workflow 2 has nothing to classify")
    ids_file = write_data_file(Path(runs_dir) / "wf2_image_ids.csv", ids, WORKFLOWS["wf2"].field)
    wf2 = run_workflow("wf2", endpoint, ids_file, Path(runs_dir) / "wf2", profile, install=install, progress=progress)
    for name, run, df in (("wf1", wf1, df1), ("wf2", wf2, parse_jtl(wf2.jtl))):
        figures.update({f"{name}_{k}": v for k, v in summarize_jtl(df, run.samples_planned).items()})
    figures["jmeter_startup_s"] = max(r.jmeter_startup_s or float("nan") for r in (wf1, wf2))
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint-file", type=Path)
    ap.add_argument("--urls", type=Path, help="CSV with header image_url (Workflow 1's data)")
    ap.add_argument("--against-stub", action="store_true", help="run against a local stub API (127.0.0.1)")
    ap.add_argument("--rate", type=float, default=1.0)
    ap.add_argument("--duration", type=int, default=180)
    ap.add_argument("--timeout-ms", type=int, default=LoadProfile.timeout_ms)
    ap.add_argument("--mode", choices=MODES, default="sync", help="Workflow 2: sync (/classify) or async (polling)")
    ap.add_argument("--poll-ms", type=int, default=LoadProfile.poll_ms, help="async: pause between status requests")
    ap.add_argument("--runs-dir", type=Path, default=None, help="default runs/bench-loadtest-<time>")
    args = ap.parse_args(argv)
    profile = LoadProfile(args.rate, args.duration, args.timeout_ms, mode=args.mode, poll_ms=args.poll_ms)
    runs_dir = args.runs_dir or Path("runs") / time.strftime("bench-loadtest-%Y%m%dT%H%M%S")
    try:
        install = ensure_jmeter()
    except JMeterSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress = TerminalProgress()
    if args.against_stub:
        with StubApi() as stub:
            urls = [f"http://127.0.0.1:{stub.port}/images/{i:05d}.jpg" for i in range(profile.samples_planned)]
            urls_file = write_data_file(runs_dir / "image_urls.csv", urls, "image_url")
            figures = bench_loadtest(stub.endpoint(), urls_file, runs_dir, profile, install=install, progress=progress)
    else:
        if not (args.endpoint_file and args.urls):
            ap.error("give --endpoint-file and --urls, or --against-stub")
        endpoint = ApiEndpoint.from_file(args.endpoint_file)
        figures = bench_loadtest(endpoint, args.urls, runs_dir, profile, install=install, progress=progress)
    print(f"wf2_mode: {profile.mode}")
    for name, value in figures.items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
