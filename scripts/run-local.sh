#!/usr/bin/env bash
# `make run`: the project's Mosquitto and a SeaweedFS S3 gateway under .run/, then every service under honcho.
# Ctrl-C (or SIGTERM) stops the services, Mosquitto and SeaweedFS. Expects `make install migrate` to have run.
# Overrides: ENV_FILE, PROCFILE, RUN_DIR (default .run), SEAWEED_*_PORT; extra arguments go to `honcho start`
# (e.g. `scripts/run-local.sh collector-edge collector-sequencer simulator` starts only those three).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=$ROOT/.venv/bin
RUN=${RUN_DIR:-$ROOT/.run}
ENV_FILE=${ENV_FILE:-$ROOT/.env.development}
PROCFILE=${PROCFILE:-$ROOT/Procfile}

set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a
MQTT_PORT=${MQTT_PORT:-18883}
MQTT_CERT_PORT=${MQTT_CERT_PORT:-18884}
CERTS=${CERTS_DIR:-$RUN/certs}
DYNSEC_PLUGIN=${DYNSEC_PLUGIN:-$(dpkg -L mosquitto 2>/dev/null | grep -m1 'mosquitto_dynamic_security.so$' || true)}
S3_ENDPOINT=${S3_ENDPOINT:-127.0.0.1:8333}
S3_PORT=${S3_ENDPOINT##*:}
# SeaweedFS mini runs several servers; pin them all so nothing lands on a port the services use (gRPC = port+10000).
SEAWEED_MASTER_PORT=${SEAWEED_MASTER_PORT:-9333}
SEAWEED_VOLUME_PORT=${SEAWEED_VOLUME_PORT:-8340}
SEAWEED_FILER_PORT=${SEAWEED_FILER_PORT:-8888}
SEAWEED_WEBDAV_PORT=${SEAWEED_WEBDAV_PORT:-7333}
SEAWEED_ADMIN_PORT=${SEAWEED_ADMIN_PORT:-23646}
SEAWEED_ICEBERG_PORT=${SEAWEED_ICEBERG_PORT:-8181}
SEAWEED_LANCE_PORT=${SEAWEED_LANCE_PORT:-8335}

command -v mosquitto >/dev/null || { echo "mosquitto is not installed: run \`make system-deps\`" >&2; exit 1; }
mkdir -p "$RUN/mosquitto/data" "$RUN/seaweed" "$RUN/logs"
PIDS=()

log() { printf '\033[1m[run-local]\033[0m %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # wait_port PORT NAME PID LOGFILE
  for _ in $(seq 1 300); do
    port_open "$1" && return 0
    if ! kill -0 "$3" 2>/dev/null; then
      log "$2 exited; last lines of $4:"; tail -n 20 "$4" >&2; return 1
    fi
    sleep 0.2
  done
  log "$2 did not open port $1 within 60 s (see $4)"; return 1
}

cleanup() {
  trap - EXIT INT TERM
  log "stopping Mosquitto and SeaweedFS"
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in "$MQTT_PORT" "$MQTT_CERT_PORT" "$S3_PORT"; do
  if port_open "$port"; then
    log "port $port is already in use (a previous \`make run\` still running?)"; exit 1
  fi
done

# Development PKI (server CA, server certificate, device CA + CRL) and the broker's first dynsec file, once.
"$BIN/python" -m iothub.devcerts "$CERTS"
export TLS_CERT_FILE=$CERTS/server.crt TLS_KEY_FILE=$CERTS/server.key  # HTTPS of the API and the HTTP ingest
export MQTT_TLS_CA=$CERTS/ca.crt DEVICE_CA_CERT_FILE=$CERTS/device-ca.crt DEVICE_CA_KEY_FILE=$CERTS/device-ca.key \
  DEVICE_CA_CRL_DISTRIBUTION=file DEVICE_CA_CRL_FILE=$CERTS/device-ca.crl MQTT_BROKER_PIDFILE=$RUN/mosquitto/mosquitto.pid \
  SIM_CREDENTIALS_FILE=${SIM_CREDENTIALS_FILE:-$RUN/simulator-credentials.json}
"$BIN/python" -m iothub.dynsec_init "$RUN/mosquitto/data/dynamic-security.json"
[ -n "$DYNSEC_PLUGIN" ] || { echo "Mosquitto's dynamic security plugin is missing" >&2; exit 1; }

# Mosquitto: the deployment config with local TLS listeners, .run/ paths and the log in .run/logs.
CONF=$RUN/mosquitto/mosquitto.conf
{
  sed -E -e "s|^listener 8883$|listener $MQTT_PORT 127.0.0.1|" \
         -e "s|^listener 8884$|listener $MQTT_CERT_PORT 127.0.0.1|" \
         -e "s|^persistence_location .*|persistence_location $RUN/mosquitto/data/|" \
         -e "s|^plugin .*|plugin $DYNSEC_PLUGIN|" \
         -e "s|^plugin_opt_config_file .*|plugin_opt_config_file $RUN/mosquitto/data/dynamic-security.json|" \
         -e "s|/mosquitto/certs/|$CERTS/|g" -e "s|/mosquitto/crl/|$CERTS/|g" \
         -e '/^(log_dest|pid_file|user) /d' deploy/mosquitto/mosquitto.conf
  # The device manager signals this pid (SIGHUP) when it revokes a certificate: Mosquitto rereads the CRL.
  echo "pid_file $RUN/mosquitto/mosquitto.pid"
  # As root Mosquitto would switch to the `mosquitto` user, who cannot write the persistence dir in the checkout.
  [ "$(id -u)" = 0 ] && echo "user root"
  echo "log_dest stdout"
} > "$CONF"
setsid mosquitto -c "$CONF" > "$RUN/logs/mosquitto.log" 2>&1 &
PIDS+=($!)
wait_port "$MQTT_PORT" Mosquitto "$!" "$RUN/logs/mosquitto.log"
log "Mosquitto TLS on 127.0.0.1:$MQTT_PORT (password) and :$MQTT_CERT_PORT (client certificate), CA $CERTS/ca.crt"

setsid "$BIN/weed" mini -dir="$RUN/seaweed" -ip=127.0.0.1 -admin.ui=false -master.telemetry=false \
  -s3.port="$S3_PORT" -master.port="$SEAWEED_MASTER_PORT" -volume.port="$SEAWEED_VOLUME_PORT" \
  -filer.port="$SEAWEED_FILER_PORT" -webdav.port="$SEAWEED_WEBDAV_PORT" -admin.port="$SEAWEED_ADMIN_PORT" \
  -s3.port.iceberg="$SEAWEED_ICEBERG_PORT" -s3.port.lance="$SEAWEED_LANCE_PORT" \
  > "$RUN/logs/seaweedfs.log" 2>&1 &
PIDS+=($!)
wait_port "$S3_PORT" SeaweedFS "$!" "$RUN/logs/seaweedfs.log"
log "SeaweedFS S3 on 127.0.0.1:$S3_PORT, bucket ${S3_BUCKET:-iot-data} (log $RUN/logs/seaweedfs.log)"

cat <<INFO

  Device manager API   https://127.0.0.1:8080/api/v1/    docs https://127.0.0.1:8080/api/v1/docs
                       (development CA: $CERTS/ca.crt, e.g. curl --cacert $CERTS/ca.crt ...)
                       POST /api/v1/auth/login {"email": "${ADMIN_EMAIL:-?}", "password": "${ADMIN_PASSWORD:-?}"}
  Metrics              http://127.0.0.1:PORT/metrics, PORT per process (Procfile):
                       collector edge :9110  sequencer :9111  series :9112  archive :9113  state :9114
                       dead letters :9115   energy :9116   rule-engine :9120   notifier :9130   simulator :9140
                       device-manager https://127.0.0.1:8080/metrics
  Collector ingest     https://127.0.0.1:8081/api/v1/telemetry (the edge)
  MQTT (TLS)           mosquitto_sub -p $MQTT_PORT --cafile $CERTS/ca.crt -u iothub-bridge -P "\$MQTT_BRIDGE_PASSWORD" -t 'iot/+/telemetry' -v
  Database             psql ${DATABASE_URL:-?}
  Ctrl-C stops everything.

INFO

# Mosquitto and SeaweedFS run in their own sessions, so Ctrl-C reaches only honcho: the services stop first (the
# simulator still publishes its offline statuses), then the EXIT trap stops the infrastructure.
PATH=$BIN:$PATH "$BIN/honcho" start -f "$PROCFILE" -e "$ENV_FILE" -d "$ROOT" "$@" &
HONCHO=$!
trap 'kill -TERM "$HONCHO" 2>/dev/null || true' INT TERM
wait "$HONCHO" || true  # returns early when a signal arrives...
wait "$HONCHO" || true  # ...then waits for honcho to stop every service
