-- Device broker credentials (docs/security.md): which ones a device has and their fingerprints, never a secret.
-- The broker (Mosquitto dynsec) keeps the salted password hashes; the device CA's CRL lists revoked certificates.
CREATE TABLE device_credentials (
    device_id   text NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('password', 'certificate')),
    fingerprint text NOT NULL,          -- password: short sha256 of it; certificate: sha256 of the DER
    serial      numeric(50, 0),         -- certificate serial number
    not_after   timestamptz,            -- certificate expiry
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, kind)
);

-- Every certificate ever revoked: the CRL is rebuilt from this table on each revocation.
CREATE TABLE revoked_certificates (
    serial      numeric(50, 0) PRIMARY KEY,
    device_id   text NOT NULL,
    fingerprint text NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now()
);
