"""Series store on InfluxDB 2.x (or any /api/v2/write receiver): synchronous writes, so the ack follows the write."""

from __future__ import annotations

from collections.abc import Sequence

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from collector.writers import metrics
from collector.writers.series import WRITER, SeriesRecord, line_protocol
from iothub.errors import Unavailable

# Statuses that mean "the store or its configuration is not ready": wait, never drop.
_WAIT_STATUSES = {401, 403, 404, 408, 429}


class InfluxSeriesStore:
    """Points `iot_telemetry,device_id,device_type,metric,unit value=` at each reading's own timestamp."""

    name = "influxdb"

    def __init__(self, url: str, token: str | None, org: str, bucket: str, *, timeout_ms: int = 10_000,
                 chunk_lines: int = 5000):
        self._client = InfluxDBClient(url=url, token=token or "", org=org, timeout=timeout_ms)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._org = org
        self._bucket = bucket
        self._chunk = chunk_lines

    def write(self, records: Sequence[SeriesRecord]) -> int:
        """Send every reading; same series + timestamp overwrite, so a redelivery stores once."""
        lines = [line for record in records for line in line_protocol(record)]
        for start in range(0, len(lines), self._chunk):
            self._send(lines[start:start + self._chunk])
        metrics.WRITTEN.labels(WRITER, "points").inc(len(lines))
        return len(lines)

    def _send(self, lines: list[str]) -> None:
        try:
            self._write_api.write(bucket=self._bucket, org=self._org, record=lines,
                                  write_precision=WritePrecision.NS)
        except ApiException as exc:
            if exc.status is None or exc.status >= 500 or exc.status in _WAIT_STATUSES:
                raise Unavailable(f"influxdb: {exc.status} {exc.reason}") from exc
            # 400/413/422: something in this batch is bad; the consumer isolates and dead-letters it.
            raise RuntimeError(f"influxdb rejected the write: {exc.status} {str(exc.body)[:300]}") from exc
        except (Urllib3Error, OSError) as exc:
            raise Unavailable(f"influxdb: {exc}") from exc

    def ping(self) -> bool:
        """True when the server answers its health endpoint."""
        try:
            return bool(self._client.ping())
        except Exception:  # readiness probe: any failure means not ready
            return False

    def close(self) -> None:
        """Release the HTTP pool."""
        self._client.close()
