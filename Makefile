# IoT Hub: `make run` starts the platform locally, `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_STAMP := /var/lib/iothub-apt.stamp
APT_PACKAGES := mosquitto victoria-metrics prometheus prometheus-alertmanager wrk redis-server chromium
PACKAGES := -e libs/iothub -e services/collector -e services/rule-engine -e services/notifier \
            -e services/device-manager -e simulator
DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/iothub
PYTEST_ARGS ?=

.PHONY: install system-deps services-up migrate run test lint bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt libs/iothub/pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps $(PACKAGES)
	touch $(STAMP)

# Debian packages the tests and the local stack use (Mosquitto binary, VictoriaMetrics, promtool, amtool, Chromium
# for the console browser tests).
system-deps: $(APT_STAMP)

$(APT_STAMP): Makefile
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $(APT_STAMP) 2>/dev/null || true

# Start the machine's PostgreSQL and RabbitMQ if they stopped.
services-up:
	@scripts/services-up.sh

migrate: install services-up
	@psql "$(dir $(DATABASE_URL))postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='$(notdir $(DATABASE_URL))'" | grep -q 1 \
	  || psql "$(dir $(DATABASE_URL))postgres" -c 'CREATE DATABASE "$(notdir $(DATABASE_URL))"'
	$(BIN)/python -m iothub.db.migrate $(DATABASE_URL)

run: install system-deps migrate
	scripts/run-local.sh

test: install system-deps services-up
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install system-deps services-up
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .run
