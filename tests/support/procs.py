"""Start and stop the real servers tests need (Mosquitto, SeaweedFS S3, VictoriaMetrics) on free ports."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.poll import wait_for

ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"  # Debian's mosquitto package


def free_port() -> int:
    """A TCP port nobody listens on right now (below 55000: SeaweedFS adds 10000 for gRPC)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 55000:
            return port
    raise RuntimeError("no free port below 55000")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on the port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def find_binary(name: str) -> str:
    """A binary from the virtualenv or PATH."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed; run `make install`")
    return found


@dataclass
class Server:
    """A child process serving on `port`; restartable for fault tests."""

    name: str
    argv: list[str]
    port: int
    workdir: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, timeout: float = 30.0) -> Server:
        """Start and wait until the port accepts connections."""
        with open(self.workdir / f"{self.name}.log", "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         start_new_session=True)
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, timeout=timeout,
                 what=f"{self.name} on port {self.port}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {(self.workdir / f'{self.name}.log').read_text()[-2000:]}")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process group and wait for it."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        wait_for(lambda: not port_open(self.port), timeout=10, what=f"{self.name} port closed")

    def restart(self) -> None:
        """Stop then start again on the same port and data directory."""
        self.stop()
        self.start()


@dataclass
class Mosquitto(Server):
    """The broker: `port` is the password TLS listener, `cert_port` the client-certificate one."""

    cert_port: int = 0
    certs: Path | None = None
    plain_port: int = 0  # a plain-TCP listener (still authenticated), for benchmarks that compare with TLS

    def reload(self) -> None:
        """SIGHUP: Mosquitto reloads its TLS files, the device CA's CRL included."""
        os.kill(self.proc.pid, signal.SIGHUP)


def mosquitto(workdir: Path, *, plain: bool = False, crl_dir: Path | None = None) -> Mosquitto:
    """The project's Mosquitto config: its two TLS listeners on private ports, its own dynsec file, the run's certs;
    `plain` adds an authenticated plain-TCP listener on localhost (bench.ingest's TLS-cost baseline); `crl_dir`
    gives it a CRL file of its own there (a copy of the run's), else it reads the run's certs/device-ca.crl."""
    from tests.support import mqtt as test_mqtt

    port, cert_port = free_port(), free_port()
    data = workdir / "mosquitto-data"
    data.mkdir(parents=True, exist_ok=True)
    certs = test_mqtt.certs_dir()
    if crl_dir is not None:
        crl_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(certs / "device-ca.crl", crl_dir / "device-ca.crl")
    dynsec = data / "dynamic-security.json"
    test_mqtt.write_dynsec(dynsec)
    listeners = iter([f"listener {port} 127.0.0.1", f"listener {cert_port} 127.0.0.1"])
    overrides = {"persistence_location": f"persistence_location {data}/", "plugin": f"plugin {DYNSEC_PLUGIN}",
                 "plugin_opt_config_file": f"plugin_opt_config_file {dynsec}"}
    lines = []
    for line in MOSQUITTO_CONF.read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key not in ("log_dest", "pid_file", "user"):
            out = next(listeners) if key == "listener" else overrides.get(key, line)
            out = out.replace("/mosquitto/certs/", f"{certs}/").replace("/mosquitto/crl/", f"{crl_dir or certs}/")
            lines.append(out)
    conf = workdir / "mosquitto.conf"
    # Started as root, Mosquitto drops to user "mosquitto", which cannot write the persistence file into our
    # root-owned temp dir (sessions would silently not survive a restart); stay the user we are.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
    pid = f"pid_file {workdir / 'mosquitto.pid'}\n"  # the device manager's CRL reload signals it
    plain_port = free_port() if plain else 0
    extra = f"listener {plain_port} 127.0.0.1\n" if plain else ""
    conf.write_text("\n".join(lines) + "\nlog_dest stdout\n" + user + pid + extra)
    return Mosquitto("mosquitto", [find_binary("mosquitto"), "-c", str(conf)], port, workdir, cert_port=cert_port,
                     certs=certs, plain_port=plain_port)


def seaweed_s3(workdir: Path, credentials: tuple[str, str] | None = None) -> Server:
    """SeaweedFS in mini mode; its S3 gateway is the real S3 server of the tests. With `credentials` (access key,
    secret) it accepts only that identity and checks signatures, pre-signed URL expiry included."""
    data = workdir / "seaweed"
    data.mkdir(parents=True, exist_ok=True)
    extra = []
    if credentials:
        config = workdir / "s3.json"
        config.write_text(json.dumps({"identities": [{"name": "tests", "actions": ["Admin", "Read", "Write", "List"],
                                                      "credentials": [{"accessKey": credentials[0],
                                                                       "secretKey": credentials[1]}]}]}))
        extra = [f"-s3.config={config}"]
    p = {name: free_port() for name in ("s3", "master", "volume", "filer", "webdav", "admin", "iceberg", "lance")}
    argv = [find_binary("weed"), "mini", f"-dir={data}", "-ip=127.0.0.1", "-admin.ui=false",
            f"-s3.port={p['s3']}", f"-master.port={p['master']}", f"-volume.port={p['volume']}",
            f"-filer.port={p['filer']}", f"-webdav.port={p['webdav']}", f"-admin.port={p['admin']}",
            f"-s3.port.iceberg={p['iceberg']}", f"-s3.port.lance={p['lance']}", *extra]
    return Server("seaweedfs", argv, p["s3"], workdir)


def victoria_metrics(workdir: Path) -> Server:
    """VictoriaMetrics: a real receiver of influxdb-client writes on /api/v2/write."""
    port = free_port()
    data = workdir / "victoria"
    data.mkdir(parents=True, exist_ok=True)
    argv = [find_binary("victoria-metrics"), f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={data}",
            "-search.latencyOffset=0s", "-retentionPeriod=100y"]
    return Server("victoria-metrics", argv, port, workdir)
