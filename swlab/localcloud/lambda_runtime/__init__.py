"""The Lambda runtime of the local cloud, split by role (as LocalStack's is).

Bottom up: :mod:`.spec` (``RuntimeSpec``, code extraction, the process environment),
:mod:`.invocation` (one invoke in flight), :mod:`.runtime_api` (the ``/2018-06-01/runtime/``
endpoints of one environment), :mod:`.output_pump` (every environment's stdout, one thread),
:mod:`.memory` (resident memory of a process tree, the memory watchdog),
:mod:`.execution_environment` (one environment: spawn, states, kill), :mod:`.pool`
(warm reuse, concurrency, reaping), :mod:`.catalog` (functions and their versions known to moto's backend),
:mod:`.telemetry` (log events and metrics into moto), :mod:`.dataplane` (an invoke from
start to REPORT), :mod:`.provisioned` (provisioned concurrency, which moto lacks),
:mod:`.async_invoke` (Event invokes: retries, destinations),
:mod:`.invoke_api` (the HTTP routes: Invoke and the admin endpoint).
"""
