"""IoT Hub rule engine: threshold and built-in rules turning telemetry into events (transactional outbox)."""
