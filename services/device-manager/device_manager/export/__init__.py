"""Streamed data export (telemetry and energy) as CSV or Parquet."""
