"""device_manager."""
