"""The command-center wall (Dash + dash-leaflet + plotly), served by gunicorn: ``dashboard.app:server``.

Reads live state from Redis (one snapshot pipeline per refresh) and history/aggregates from
PostgreSQL (bounded, indexed queries, cached briefly in Redis). Imports ``schemas`` only.
"""
