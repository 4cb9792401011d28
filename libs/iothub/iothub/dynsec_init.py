"""`python -m iothub.dynsec_init FILE`: write Mosquitto's first dynamic-security.json (roles + service accounts).

Passwords from MQTT_ADMIN_PASSWORD, MQTT_BRIDGE_PASSWORD, MQTT_COMMANDS_PASSWORD; topic prefix MQTT_TOPIC_PREFIX.
An existing file is left alone: from then on the plugin owns it and the device manager changes it at run time.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from iothub import broker_acl
from iothub.settings import Env

PASSWORD_VARS = {"iothub-admin": "MQTT_ADMIN_PASSWORD", "iothub-bridge": "MQTT_BRIDGE_PASSWORD",
                 "iothub-commands": "MQTT_COMMANDS_PASSWORD"}


def write(path: Path, passwords: dict[str, str], prefixes: tuple[str, ...] = ("",), extra: dict | None = None) -> bool:
    """Write the file unless it exists (True when written); `extra` adds clients/roles (tests)."""
    if path.exists():
        return False
    config = broker_acl.initial_config(passwords, prefixes)
    for key, items in (extra or {}).items():
        config[key] += items
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=1))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return True


def main(argv: list[str] | None = None) -> None:
    """Command line: FILE."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    ns = parser.parse_args(argv)
    env = Env()
    passwords = {user: env.str(var) for user, var in PASSWORD_VARS.items()}
    written = write(Path(ns.file), passwords, (env.str("MQTT_TOPIC_PREFIX", ""),))
    print(f"{ns.file}: {'written' if written else 'exists, left alone'}")


if __name__ == "__main__":
    main()
