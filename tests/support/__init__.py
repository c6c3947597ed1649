"""Test bench: background loop, Slack stand-in and driver, fixtures."""
