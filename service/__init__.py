"""songqueue's web service, durable queue and worker. Nothing in this package imports torch."""

__version__ = "0.1.0"
