"""Metrics: per-request usage and replica probes rolled into time buckets, queried as
endpoint metrics, health, SLOs and a Prometheus page."""
