-- When a series row was written, so benchmarks and lag alerts can measure publish -> stored latency.
ALTER TABLE telemetry ADD COLUMN stored_at timestamptz NOT NULL DEFAULT now();
