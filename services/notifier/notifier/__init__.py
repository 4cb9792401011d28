"""Notifier: delivers event changes to subscriptions over log, webhook and email."""
