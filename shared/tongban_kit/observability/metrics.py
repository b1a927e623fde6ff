"""Prometheus metrics: one registry per app, so tests can build many apps in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServiceMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class ServiceMetrics:
    """The metrics every service exposes at ``/metrics``."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.http_requests = Counter(
            "tongban_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "tongban_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_published = Counter(
            "tongban_outbox_published_events", "Events the relay published to Kafka", registry=r
        )
        self.outbox_backlog = Gauge(
            "tongban_outbox_backlog", "Outbox rows not yet published (last seen)", registry=r
        )
        self.outbox_republished = Counter(
            "tongban_outbox_republished_events",
            "Published outbox rows sent again because the broker lost them",
            registry=r,
        )
        self.outbox_publish_errors = Counter(
            "tongban_outbox_publish_errors", "Relay batches that failed to publish", registry=r
        )
        self.events_consumed = Counter(
            "tongban_events_consumed", "Events consumed", ["consumer", "outcome"], registry=r
        )
        self.consumer_restarts = Counter(
            "tongban_consumer_restarts",
            "Kafka consumers restarted (reason: error, stuck with events waiting, unassigned)",
            ["consumer", "reason"],
            registry=r,
        )
