"""`gunicorn -c gunicorn.conf.py` from this folder (bench): the packaged settings, device_manager.gunicorn_conf."""

from device_manager.gunicorn_conf import *  # noqa: F403 - gunicorn reads the settings and hooks as module names
