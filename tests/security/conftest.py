"""Security tests reuse the device-manager fixtures (app on the run's database/vhost/broker, users and tokens per role,
fresh device_type/device rows) and assert_error; `probes` collects the MQTT probes a test opens."""

import pytest

from tests.device_manager.conftest import (  # noqa: F401 - re-exported as fixtures for this folder
    app,
    auth,
    client,
    device,
    device_type,
    dm_config,
    make_app,
    tokens,
    users,
)


@pytest.fixture
def probes():
    """MQTT probes (tests.support.mqtt_probe) opened by a test, closed after it."""
    opened = []
    yield opened
    for p in opened:
        p.close()
