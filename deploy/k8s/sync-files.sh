#!/usr/bin/env bash
# Copy the files kustomize needs from their canonical places into deploy/k8s (kustomize only reads below a
# kustomization's directory). tests/deploy/test_kubernetes.py fails when a copy is stale.
set -euo pipefail
cd "$(dirname "$0")"
cp ../mosquitto/mosquitto.conf overlays/dev/files/mosquitto.conf
cp ../prometheus/rules/iothub.rules.yml components/monitoring/files/iothub.rules.yml
cp ../grafana/dashboards/iothub-overview.json components/monitoring/files/iothub-overview.json
