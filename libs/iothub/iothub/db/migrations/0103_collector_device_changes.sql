-- Collector: registrations announce themselves, so a deleted device is refused, a new one accepted and a
-- replacement unit under the same id gets a fresh sequence history at once, not after the directory's TTL.
CREATE OR REPLACE FUNCTION iothub_devices_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('iothub_devices', OLD.device_id);  -- a renamed device frees its old id too
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.device_id <> OLD.device_id) THEN
        PERFORM pg_notify('iothub_devices', NEW.device_id);
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS devices_changed ON devices;
CREATE TRIGGER devices_changed AFTER INSERT OR DELETE OR UPDATE OF device_id, device_type_id, ingest_token_hash
    ON devices FOR EACH ROW EXECUTE FUNCTION iothub_devices_changed();
