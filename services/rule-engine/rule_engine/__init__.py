"""rule_engine."""
