"""Gridwatch contracts: the wire format (terminal protocol v1), topics and keys, settings.

Pure models only: this package imports no other Gridwatch package.
"""
