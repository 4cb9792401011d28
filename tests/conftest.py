"""Session fixtures: every test run gets its own database, vhost, Mosquitto, S3 and series receiver."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support import infra, procs
from tests.support.tls import TlsFiles, make_tls_files


@pytest.fixture(scope="session")
def run_id() -> str:
    """Short id naming this run's database, vhost and client ids."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """Scratch directory for this run's servers."""
    return tmp_path_factory.mktemp("infra")


@pytest.fixture(scope="session")
def pg_dsn(run_id):
    """DSN of a fresh database with the schema applied, dropped after the run."""
    name = f"iothub_test_{run_id}"
    dsn = infra.create_database(name)
    yield dsn
    infra.drop_database(name)


@pytest.fixture(scope="session")
def db(pg_dsn):
    """A pooled Database on the run's database."""
    from iothub.db import Database

    database = Database(pg_dsn, maxconn=8, application_name="tests")
    yield database
    database.close()


@pytest.fixture(scope="session")
def amqp_url(run_id):
    """AMQP URL of a fresh vhost, deleted after the run."""
    name = f"iothub-test-{run_id}"
    url = infra.create_vhost(name)
    yield url
    infra.delete_vhost(name)


@pytest.fixture(scope="session")
def tls_files(workdir) -> TlsFiles:
    """This run's CA and a server certificate for 127.0.0.1 (HTTPS of the API and the HTTP ingest)."""
    path = workdir / "tls"
    path.mkdir(exist_ok=True)
    return make_tls_files(path)


@pytest.fixture(scope="session")
def mqtt_broker(workdir):
    """The project's Mosquitto on a private port."""
    path = workdir / "mosquitto"
    path.mkdir(exist_ok=True)
    server = procs.mosquitto(path).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(workdir):
    """SeaweedFS S3 gateway; any access key works against its open default config."""
    path = workdir / "s3"
    path.mkdir(exist_ok=True)
    server = procs.seaweed_s3(path).start(timeout=60)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria(workdir):
    """VictoriaMetrics accepting InfluxDB line-protocol writes; yields its base URL."""
    path = workdir / "victoria"
    path.mkdir(exist_ok=True)
    server = procs.victoria_metrics(path).start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture
def uid() -> str:
    """A short unique suffix for names a test creates (device ids, rule names)."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def webhook():
    """A real HTTP receiver recording POSTs (tests.support.webhook)."""
    from tests.support.webhook import running_receiver

    with running_receiver() as receiver:
        yield receiver
