"""Channel adapters: one Notifier per delivery channel."""
