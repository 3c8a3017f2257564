"""Telemetry of a run → tables, statistics, plots and cost.

Modules: :mod:`.logs` (Lambda log lines), :mod:`.collect` (boto3 collection, run directories),
:mod:`.stats` (percentiles with CIs, cold/warm, throughput, errors), :mod:`.workflow`
(per-state rows, critical path, orchestration overhead), :mod:`.plots` (matplotlib figures),
:mod:`.cost` (cost model and prices), :mod:`.bench`.

Tables of a run (``Run.tables``; one Parquet file each in the run directory):

=========================  =====================================================================
``functions``              function, memory_mb, architecture, timeout_s, package_type, log_group,
                           log_format
``log_events``             log_group, log_stream, timestamp (epoch ms), message, ingestion_time,
                           function
``invocations``            function, log_stream, request_id, start_time, end_time (UTC),
                           duration_ms, billed_duration_ms, memory_size_mb, max_memory_used_mb,
                           init_duration_ms (NaN when warm), cold, status (success|error|timeout),
                           error_type, log_format (text|json)
``metrics``                function, metric, stat, timestamp, value (AWS/Lambda; Sum, Average,
                           Maximum, SampleCount only)
``state_machines``         state_machine, arn, type, log_group, definition
``executions``             execution_arn, state_machine, status, start_date, stop_date, error,
                           source (history_api|cloudwatch_logs), duration_ms
``states``                 execution_arn, state, state_type, entered, exited, status, resource,
                           error, failed_attempts, duration_ms, state_machine
``state_machine_log_events``  the state machines' log group events (Express history on AWS)
``jtl``                    the JMeter samples (timeStamp UTC, elapsed ms, label, success,
                           responseCode, ...)
=========================  =====================================================================
"""

from swlab.analysis.collect import Run, collect_run, load_run, read_jtl, save_run
from swlab.analysis.logs import parse_log_events, parse_report_line

__all__ = ["Run", "collect_run", "load_run", "save_run", "read_jtl", "parse_log_events", "parse_report_line"]
