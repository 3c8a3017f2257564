"""Every change the local cloud makes to moto 5.2.5, in one place.

Each patch names the moto version and the reason, and has a test in
tests/functional/test_moto_patches.py that fails when upstream behaviour changes.
``apply()`` is idempotent and is called once by :meth:`LocalCloud.start`.
"""

from __future__ import annotations

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    _enable_state_machine_execution()
    _applied = True


def _enable_state_machine_execution() -> None:
    """moto 5.2.5: Step Functions only *records* executions unless the user config
    ``stepfunctions.execute_state_machine`` is on. It must be on before any state
    machine is created (ones created earlier are invisible to the interpreter)."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
