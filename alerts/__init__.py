"""The alerts engine: rules over the live stream, alerts with a lifecycle (schemas/alert.py)."""
