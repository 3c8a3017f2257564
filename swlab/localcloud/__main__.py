"""Command line of the local cloud: ``python -m swlab.localcloud {serve,start,stop,status}``.

``start`` launches the server in the background and prints its endpoint (and
an ``export AWS_ENDPOINT_URL=...`` line with ``--shell``); ``stop`` shuts it
down and ends every child process; ``serve`` runs it in the foreground.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from swlab.localcloud.server import LocalCloudError, LocalCloudProcess, serve_forever, wait_healthy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcloud", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {name: sub.add_parser(name) for name in ("serve", "start", "stop", "status")}
    for name in ("serve", "start"):
        p = commands[name]
        p.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("SWLAB_LOCALCLOUD_PORT", "4566")),
            help="port on 127.0.0.1 (0 picks a free one; default 4566 or $SWLAB_LOCALCLOUD_PORT)",
        )
        p.add_argument("--options", default="{}", help="JSON object of data-plane options")
    for p in commands.values():
        p.add_argument(
            "--work-dir", type=Path, default=Path(".localcloud"), help="state file and logs (default .localcloud)"
        )
    commands["start"].add_argument("--shell", action="store_true", help="print 'export AWS_ENDPOINT_URL=...'")
    args = parser.parse_args(argv)
    work_dir = args.work_dir.resolve()

    if args.command == "serve":
        work_dir.mkdir(parents=True, exist_ok=True)
        serve_forever(args.port, work_dir, json.loads(args.options))
        return 0
    state_file = work_dir / "state.json"
    if args.command == "start":
        if state_file.exists() and wait_healthy(json.loads(state_file.read_text())["endpoint"], timeout_s=1):
            print(f"already running: {json.loads(state_file.read_text())['endpoint']}", file=sys.stderr)
            return 1
        cloud = LocalCloudProcess(port=args.port, work_dir=work_dir, options=json.loads(args.options))
        try:
            cloud.start()
        except LocalCloudError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        cloud.proc = None  # keep it running after we exit
        print(f"export AWS_ENDPOINT_URL={cloud.endpoint_url}" if args.shell else cloud.endpoint_url)
        print(f"local cloud pid {cloud.pid}, logs in {cloud.log_file}", file=sys.stderr)
        return 0
    if not state_file.exists():
        print("not running", file=sys.stderr)
        return 1 if args.command == "status" else 0
    state = json.loads(state_file.read_text())
    if args.command == "status":
        healthy = wait_healthy(state["endpoint"], timeout_s=2)
        print(json.dumps({**state, "healthy": healthy}))
        return 0 if healthy else 1
    return _stop_pid(int(state["pid"]), state_file)


def _stop_pid(pid: int, state_file: Path, grace_s: float = 15.0) -> int:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        state_file.unlink(missing_ok=True)
        return 0
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # the server leads its own session: end any straggler child
    except (ProcessLookupError, PermissionError):
        pass
    state_file.unlink(missing_ok=True)
    print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
