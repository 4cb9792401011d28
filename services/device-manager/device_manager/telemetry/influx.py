"""Telemetry from InfluxDB 2.x through Flux; same answers and shape as the PostgreSQL backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from device_manager.telemetry.query import Latest, Point, Series, TelemetryQuery, TooManyPoints, bucket_start
from iothub.errors import Unavailable

MEASUREMENT = "iot_telemetry"  # tags device_id, device_type, metric, unit; field value (the collector's writer)
_FLUX_AGG = {"mean": "mean", "min": "min", "max": "max", "last": "last", "count": "count"}


def flux_string(value: str) -> str:
    """A Flux string literal; backslash, quote and ${ interpolation are escaped so input stays data."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def flux_time(ts: datetime) -> str:
    """An RFC 3339 UTC time literal."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _selector(bucket: str, device_id: str, start: str, stop: str, metrics: tuple[str, ...]) -> str:
    lines = [f"from(bucket: {flux_string(bucket)})",
             f"  |> range(start: {start}, stop: {stop})",
             f'  |> filter(fn: (r) => r._measurement == "{MEASUREMENT}" and r._field == "value"'
             f" and r.device_id == {flux_string(device_id)})"]
    if metrics:
        lines.append("  |> filter(fn: (r) => " + " or ".join(f"r.metric == {flux_string(m)}" for m in metrics) + ")")
    return "\n".join(lines)


def build_flux(bucket: str, q: TelemetryQuery) -> str:
    """The Flux program for a query: tables grouped by (metric, unit), windows aligned to the epoch."""
    flux = _selector(bucket, q.device_id, flux_time(q.start), flux_time(q.end), q.metrics)
    # One table per (metric, unit) even if the device changed type; sorted so last() means newest.
    flux += '\n  |> group(columns: ["metric", "unit"])\n  |> sort(columns: ["_time"])'
    if q.every is None:
        flux += f"\n  |> limit(n: {q.max_points + 1})"
    else:
        flux += (f"\n  |> aggregateWindow(every: {q.every_seconds}s, fn: {_FLUX_AGG[q.agg]}, createEmpty: false,"
                 ' timeSrc: "_start")')
    return flux + '\n  |> keep(columns: ["_time", "_value", "metric", "unit"])'


def build_latest_flux(bucket: str, device_id: str, metrics: tuple[str, ...], lookback: timedelta) -> str:
    """The Flux program for the newest value of each series within the lookback."""
    start = f"-{int(lookback.total_seconds())}s"
    return (_selector(bucket, device_id, start, "now()", metrics)
            + '\n  |> last()\n  |> keep(columns: ["_time", "_value", "metric", "unit"])')


class InfluxSeries:
    """SeriesReader over InfluxDB; `client` is an influxdb_client.InfluxDBClient."""

    def __init__(self, client, *, org: str, bucket: str, latest_lookback: timedelta = timedelta(days=30)):
        self._query_api = client.query_api()
        self._org = org
        self._bucket = bucket
        self._lookback = latest_lookback

    @classmethod
    def connect(cls, url: str, token: str | None, org: str, bucket: str, *, timeout_ms: int = 10_000) -> InfluxSeries:
        """Build from connection settings."""
        from influxdb_client import InfluxDBClient

        return cls(InfluxDBClient(url=url, token=token or "", org=org, timeout=timeout_ms), org=org, bucket=bucket)

    def query(self, q: TelemetryQuery) -> list[Series]:
        """Raw points or per-bucket aggregates, one Series per (metric, unit)."""
        grouped: dict[tuple[str, str], Series] = {}
        total = 0
        for metric, unit, ts, value in self._records(build_flux(self._bucket, q)):
            series = grouped.setdefault((metric, unit), Series(metric, unit))
            if q.every is None:
                series.points.append(Point(ts, float(value)))
            else:
                # timeSrc _start is clipped to the range start; report the aligned bucket like date_bin does.
                number = int(value) if q.agg == "count" else float(value)
                series.points.append(Point(bucket_start(ts, q.every), number))
            total += 1
        if q.every is None and total > q.max_points:
            raise TooManyPoints("every", f"more than {q.max_points} raw points in the range; "
                                         "aggregate with every/agg or shorten the range")
        for series in grouped.values():
            series.points.sort(key=lambda p: p.ts)
        return [grouped[key] for key in sorted(grouped)]

    def latest(self, device_id: str, metrics: tuple[str, ...] = ()) -> list[Latest]:
        """Newest value per metric (across units and device types)."""
        newest: dict[str, Latest] = {}
        for metric, unit, ts, value in self._records(build_latest_flux(self._bucket, device_id, metrics,
                                                                        self._lookback)):
            if metric not in newest or ts > newest[metric].ts:
                newest[metric] = Latest(metric, unit, ts, float(value))
        return [newest[m] for m in sorted(newest)]

    def _records(self, flux: str):
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            tables = self._query_api.query(flux, org=self._org)
        except ApiException as exc:
            if exc.status and exc.status < 500 and exc.status not in (401, 403, 404):
                raise  # a Flux bug of ours, not an outage
            raise Unavailable(f"influxdb: {exc.status} {exc.reason}") from exc
        except (HTTPError, OSError) as exc:  # connection refused, timeouts, retries exhausted
            raise Unavailable(f"influxdb: {exc}") from exc
        for table in tables:
            for record in table.records:
                # The collector omits the unit tag when the unit is empty (e.g. power factor).
                yield (record.values.get("metric") or "", record.values.get("unit") or "", record.get_time(),
                       record.get_value())
