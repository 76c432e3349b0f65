"""The two pages: operator mode (``/``) and wall mode (``/wall``)."""
