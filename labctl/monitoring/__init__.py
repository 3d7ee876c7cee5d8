"""The monitoring layer's work on the operator's machine, and ``labctl monitoring status``.

``status.py`` asks Prometheus (its HTTP API) what it scrapes and what fires, and
compares that with what the inventory implies; ``work.py`` holds the layer's local
steps (the RBAC, the wait for every target up).
"""
