"""The load-test benchmark (scripts/bench-loadtest): Workflow 1 with a URL list, then Workflow 2 with
the image ids Workflow 1 returned, and the figures of both runs."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from swlab.loadtest.install import JMeterInstall, ensure_jmeter
from swlab.loadtest.jtl import parse_jtl, returned_ids, summarize_jtl
from swlab.loadtest.plans import WORKFLOWS, ApiEndpoint, LoadProfile, write_data_file
from swlab.loadtest.progress import Progress
from swlab.loadtest.runner import JMeterRunError, run_workflow


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
