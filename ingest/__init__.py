"""Ingest: MQTT -> validate -> assign grid -> PostgreSQL history + Redis live state."""
