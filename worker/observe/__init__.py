"""Observability every stage may use: structlog setup and bound loggers (`logs`), and the
Prometheus metrics with their /healthz server (`metrics`, `metrics_env`, which reads its
settings without importing prometheus_client). It reads the store for its gauges and
nothing later: the pipeline and delivery import it, never the other way round.
"""
