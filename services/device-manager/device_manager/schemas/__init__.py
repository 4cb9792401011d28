"""Marshmallow schemas for every request and response."""
