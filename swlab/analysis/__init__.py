"""Telemetry of a run → tables, statistics, plots and cost.

Pure modules (no boto3, no files): :mod:`.logs` (Lambda log events → invocations; the line grammar in
:mod:`.log_lines`, the column-wise reader in :mod:`.log_columns`), :mod:`.aws_calls` (the
functions' ``aws_calls`` lines), :mod:`.histories` (Step Functions histories → executions and
state visits), :mod:`.stats` (percentiles with CIs, cold/warm, throughput, errors),
:mod:`.workflow` (critical path, orchestration overhead), :mod:`.cost` (cost model),
:mod:`.plots` (matplotlib figures).

I/O modules: :mod:`.collect` (boto3 collection of one run), :mod:`.dataset` (:class:`RunData`
saved to and loaded from a run directory), :mod:`.prices` (price table, Price List API).

This package imports nothing on import, so ``import swlab.analysis.stats`` loads no boto3.

Tables of a run (``RunData.tables``; one Parquet file each in the run directory):

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
