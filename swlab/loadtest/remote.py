"""JMeter's distributed mode: remote engines (``jmeter -s``) driven by one client (``-R host:port,...``).

For rates one machine cannot generate, each engine runs the whole plan and sends its samples back
to the client, which writes the one JTL and the dashboard. :func:`start_engines` starts engines on
this machine's loopback (for a test, or to use more cores than one JVM does); engines elsewhere are
started the same way (:func:`engine_command`) with their own address. The client splits the rate:
each of N engines gets ``rate / N`` (:func:`split_rate`).

JMeter 5.5 binds its RMI sockets to every interface when RMI's SSL is off (its loopback-aware
socket factory is only used with SSL), so engines and client here run through a 20-line launcher
(:data:`LAUNCHER_SOURCE`, Java's source-file mode) that binds every RMI server socket to loopback.
RMI over SSL is off: on loopback nothing crosses a network. For engines on other machines, use
JMeter's own keystore (``create-rmi-keystore.sh``) and leave SSL on.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from swlab.loadtest.install import JMeterInstall

LOOPBACK = "127.0.0.1"
READY_LINE = "Created remote object"
# Properties only the client may have: an engine must not exit the JVM at the end of a test.
CLIENT_ONLY = ("jmeterengine.force.system.exit", "jmeterengine.nongui.port")
LAUNCHER_CLASS = "LoopbackJMeter"
LAUNCHER_SOURCE = """\
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.rmi.server.RMISocketFactory;

/** JMeter with every RMI server socket bound to the loopback interface (JMeter 5.5 binds all). */
public class LoopbackJMeter {
    public static void main(String[] args) throws Exception {
        RMISocketFactory.setSocketFactory(new RMISocketFactory() {
            @Override public ServerSocket createServerSocket(int port) throws IOException {
                return new ServerSocket(port, 50, InetAddress.getLoopbackAddress());
            }
            @Override public Socket createSocket(String host, int port) throws IOException {
                return new Socket(host, port);
            }
        });
        Class.forName("org.apache.jmeter.NewDriver").getMethod("main", String[].class).invoke(null, (Object) args);
    }
}
"""
RMI_PROPERTIES = {"server.rmi.ssl.disable": "true"}


class RemoteEngineError(RuntimeError):
    """A remote engine did not start; the message carries its output."""


def launcher(folder: Path) -> Path:
    """The launcher's source file in ``folder`` (written once)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{LAUNCHER_CLASS}.java"
    if not path.is_file() or path.read_text() != LAUNCHER_SOURCE:
        path.write_text(LAUNCHER_SOURCE)
    return path


def loopback_java(install: JMeterInstall, jvm_args: Sequence[str], folder: Path) -> list[str]:
    """``java`` running JMeter through the loopback launcher (same arguments as ``-jar ApacheJMeter.jar``)."""
    return [
        str(install.java),
        *jvm_args,
        f"-Djava.rmi.server.hostname={LOOPBACK}",
        "-cp",
        str(install.launcher_jar),
        str(launcher(folder)),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def engine_command(
    install: JMeterInstall, jvm_args: Sequence[str], folder: Path, port: int, rmi_port: int
) -> list[str]:
    """One remote engine on loopback: registry on ``port``, its engine object on ``rmi_port``."""
    return [
        *loopback_java(install, jvm_args, folder),
        "-s",
        f"-Dserver_port={port}",
        f"-Jserver.rmi.localport={rmi_port}",
        *(f"-J{k}={v}" for k, v in RMI_PROPERTIES.items()),
        "-j",
        str(folder / f"engine-{port}.log"),
    ]


@dataclass
class RemoteEngine:
    host: str
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def start_engines(
    install: JMeterInstall, count: int, folder: Path, jvm_args: Sequence[str] = (), timeout_s: float = 60.0
) -> list[RemoteEngine]:
    """Start ``count`` engines on loopback; return once each has registered with its RMI registry."""
    folder.mkdir(parents=True, exist_ok=True)
    engines: list[RemoteEngine] = []
    try:
        for _ in range(count):
            port, rmi_port = free_port(), free_port()
            out = folder / f"engine-{port}.out"
            with open(out, "w") as fh:
                proc = subprocess.Popen(
                    engine_command(install, jvm_args, folder, port, rmi_port),
                    cwd=folder,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            engines.append(RemoteEngine(LOOPBACK, port, proc, out))
        deadline = time.monotonic() + timeout_s
        for engine in engines:
            while READY_LINE not in engine.log.read_text(errors="replace"):
                if engine.process.poll() is not None or time.monotonic() > deadline:
                    raise RemoteEngineError(
                        f"JMeter engine on {engine.address} did not start:\n{engine.log.read_text(errors='replace')[-2000:]}"
                    )
                time.sleep(0.2)
    except BaseException:
        stop_engines(engines)
        raise
    return engines


def stop_engines(engines: Sequence[RemoteEngine]) -> None:
    """End the engines this process started (their own process groups)."""
    for engine in engines:
        if engine.process.poll() is None:
            os.killpg(engine.process.pid, signal.SIGTERM)
    for engine in engines:
        try:
            engine.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(engine.process.pid, signal.SIGKILL)
            engine.process.wait()


def split_rate(rate_per_s: float, engines: int) -> float:
    """Each engine runs the whole plan: N engines at ``rate / N`` make the rate asked for."""
    return rate_per_s / max(engines, 1)


def client_arguments(remote: Sequence[str], properties: Mapping[str, str]) -> list[str]:
    """The client's ``-R`` list, RMI settings, and every property sent to the engines too (``-G``)."""
    return [
        "-R",
        ",".join(remote),
        *(f"-J{k}={v}" for k, v in RMI_PROPERTIES.items()),
        "-Jclient.rmi.localport=0",
        *(f"-G{k}={v}" for k, v in properties.items() if k not in CLIENT_ONLY),
    ]
