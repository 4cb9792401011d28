"""CRL sync: a broker's sidecar that keeps its CRL file equal to the device manager's (python -m iothub.crl_sync).

It polls GET /api/v1/pki/device-ca.crl (conditional on the ETag), installs only a CRL signed by the device CA and
not older than the installed one, writes it atomically and SIGHUPs the broker when the content changed
(docs/security.md "Revocation, and what enforces it").
"""
