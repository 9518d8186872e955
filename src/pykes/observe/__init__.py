"""Audit and error logs, their live streams, and Prometheus metrics."""
