"""Delivery to departments: Kafka topic, signed webhook, pull."""
