"""Telemetry queries behind one port (SeriesReader) with PostgreSQL and InfluxDB backends."""

from device_manager.telemetry.query import (
    AGGREGATES,
    Latest,
    Limits,
    Point,
    QueryError,
    Series,
    SeriesReader,
    TelemetryQuery,
    TooManyPoints,
    build_query,
    latest_to_dict,
    series_to_dict,
)

__all__ = ["AGGREGATES", "Latest", "Limits", "Point", "QueryError", "Series", "SeriesReader", "TelemetryQuery",
           "TooManyPoints", "build_query", "latest_to_dict", "series_to_dict"]
