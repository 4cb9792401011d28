-- Device list filtered by status and device type in the default order (-created_at): the repository sorts
-- "created_at DESC NULLS LAST, id DESC", which a backward scan of (created_at, id) cannot give (that is NULLS FIRST),
-- so PostgreSQL sorted every matching row for each page. With this index the page is an ordered (index-only) range
-- scan that stops at OFFSET + LIMIT, and the exact `total` is an index-only count. Measured by bench/api.py.
CREATE INDEX IF NOT EXISTS devices_list_idx ON devices (status, device_type_id, created_at DESC NULLS LAST, id DESC);
