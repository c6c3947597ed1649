"""Adapters to the outside: Elasticsearch, state stores, audit sinks, user groups, metrics."""
