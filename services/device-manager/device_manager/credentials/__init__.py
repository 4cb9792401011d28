"""Device broker credentials: use cases (service), PostgreSQL store, dynsec broker admin, device CA."""
