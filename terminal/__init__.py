"""Gridwatch terminals: the reference client (protocol v1), the fleet loop and the simulator.

``terminal.mqtt`` is the only module that imports paho-mqtt.
"""
