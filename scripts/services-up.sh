#!/usr/bin/env bash
# Start the machine's PostgreSQL, RabbitMQ and Redis when they are not answering (tests and `make run` need them;
# Redis holds the API's shared login-limit counters, docs/security.md).
set -euo pipefail
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  rabbitmq-server -detached
  for _ in $(seq 1 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi
for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && exit 0; sleep 1; done
echo "PostgreSQL did not come up" >&2; exit 1
