"""Telemetry of a run → tables, statistics, plots and cost.

Modules: :mod:`.logs` (Lambda log lines), :mod:`.collect` (boto3 collection, run directories),
:mod:`.stats` (percentiles with CIs, cold/warm, throughput, errors), :mod:`.workflow`
(per-state rows, critical path, orchestration overhead), :mod:`.plots` (matplotlib figures),
:mod:`.cost` (cost model and prices).
"""

from swlab.analysis.collect import Run, collect_run, load_run, read_jtl, save_run
from swlab.analysis.logs import format_report_line, parse_log_events, parse_report_line

__all__ = ["Run", "collect_run", "load_run", "save_run", "read_jtl", "parse_log_events", "parse_report_line",
           "format_report_line"]
