"""IoT Hub shared library: wire contract, broker/DB plumbing, settings, logging, health."""
