"""Shared fixtures. The local cloud runs as a child process (moto's backends are
process-global, so tests that use moto's in-process ``mock_aws`` can share the
pytest process without disturbing it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _pytest.nodeid import NodeId  # pytest 9.2's test ids: see pytest_collection_modifyitems

from swlab.localcloud.server import LocalCloudProcess
from swlab.settings import Settings, client, load_settings


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory):
    """The embedded local cloud on a free port, for the whole session; stopped at the end."""
    work_dir = tmp_path_factory.mktemp("localcloud")
    # Short idle TTL keeps the test session's Lambda environments few. CPU does not follow memory here: the
    # functional and e2e tiers check behaviour (with bounds that must hold on a busy 2-core machine), and a
    # CPU quota per environment on top of a busy machine only adds minutes of torch cold starts. CPU
    # following memory is tested by the tests that start their own local cloud with the default
    # (test_lambda_cpu.py, test_cpu_share.py, and the CI profile run by e2e/test_notebooks.py).
    cloud = LocalCloudProcess(port=0, work_dir=work_dir, options={"idle_ttl_s": 120, "cpu_model": "off"})
    cloud.start()
    yield cloud
    cloud.stop()


@pytest.fixture(scope="session")
def lab_settings(local_cloud) -> Settings:
    return load_settings(env={}, target="local", endpoint_url=local_cloud.endpoint_url, region="us-east-1")


@pytest.fixture(scope="session")
def aws(lab_settings):
    """``aws("s3")`` → a boto3 client on the local cloud."""
    cache: dict = {}

    def make(service: str, **config):
        key = (service, tuple(sorted(config.items())))
        if key not in cache:
            cache[key] = client(lab_settings, service, **config)
        return cache[key]

    return make


@pytest.fixture(autouse=True, scope="session")
def _no_real_aws_credentials():
    """Tests never talk to real AWS: blank out any credentials of the machine."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_") and k != "AWS_REGION"}
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium for the rendered-page checks. Where it is missing they alone are skipped with one
    line (scripts/test installs it first when it may: root with apt); CI (CI=true) never skips them."""
    from swlab.run.book import INSTALL_HINT, BookError, find_chromium

    try:
        return find_chromium()
    except BookError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the rendered-page checks: headless Chromium not found; {INSTALL_HINT}")
        pytest.skip(f"rendered-page check skipped: headless Chromium not found; {INSTALL_HINT}")


# ---- parallel runs (pytest-xdist, ``scripts/test`` runs ``-n 3 --dist loadgroup --no-loadscope-reorder``) ---
# Tests travel to a worker by file (a module's fixtures run once), except where a file says otherwise:
# the e2e files that share the session's deployed stack travel together (one deploy, and the stack's
# teardown test last), and a file may split its tests with its own ``xdist_group`` marks (the notebooks'
# papermill run and nbval's run are two independent lab runs).
SHARED_STACK_GROUP = "e2e-shared-stack"
E2E_SELF_CONTAINED = {"test_notebooks.py", "test_experiments_e2e.py", "test_run_robustness.py"}
# Groups start in the order of their first test. The longest go first (measured on the quiet machine, seconds
# of one worker: experiments e2e ~280, the robustness runs ~140, the notebooks' papermill run ~130, the shared
# stack ~100, nbval ~80), so that the many short files fill the workers' time around them instead of one long
# group starting last and running alone; ``--no-loadscope-reorder`` keeps xdist from re-sorting groups by
# their number of tests (which put the one-test experiments e2e last).
LONGEST_GROUPS = (
    "e2e/test_experiments_e2e.py",
    "e2e/test_run_robustness.py",
    "e2e/test_notebooks.py",
    SHARED_STACK_GROUP,
    "nbval",
)


# xdist's worker names each test's group in its id (``tests/x.py::test_a@group``, what ``--dist loadgroup``
# schedules by) by setting ``item._nodeid``; pytest 9.2 keeps ids in ``item._id`` and no longer reads
# ``_nodeid``, so with the pinned pytest 9.2 / xdist 3.8 the marks alone left every test travelling alone
# (a file's module fixtures ran on both workers and its order-dependent tests could be split between them).
# Here the group goes into the id itself, in the worker only (ids stay plain in a run without workers).
# tests/functional/test_suite_workers.py checks that a file's tests run on one worker.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    e2e = Path(__file__).parent / "e2e"
    groups: dict[pytest.Item, str] = {}
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        if mark:
            group = mark.args[0]
        else:
            path = Path(str(item.fspath))
            shared = path.parent == e2e and path.name not in E2E_SELF_CONTAINED
            group = SHARED_STACK_GROUP if shared else str(path.relative_to(e2e.parent))
            item.add_marker(pytest.mark.xdist_group(group))
        groups[item] = group
        if getattr(config.option, "loadgroup", False) and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{group}")
    first = {group: rank for rank, group in enumerate(LONGEST_GROUPS)}
    items.sort(key=lambda item: first.get(groups[item], len(first)))  # stable: a group's own order is kept
