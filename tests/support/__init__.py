"""Test support: real local infrastructure, isolated per test run."""
