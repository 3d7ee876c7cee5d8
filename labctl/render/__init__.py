"""Renderers: the inventory (or a part of it) in, plain Python data out, no I/O.

Each module turns a model into the documents a peer reads (cfssl's CSR and
signing-profile JSON today; Ignition configs, systemd units and Kubernetes
manifests as their layers come), as dicts and lists that the caller dumps to
JSON or YAML. Golden files under ``tests/fixtures/`` keep their output reviewed.
"""
