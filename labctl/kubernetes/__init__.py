"""The lab's Kubernetes cluster from the operator's machine: its API, binaries, local work.

``api.py`` reaches the API (``KubeSession``), ``binaries.py`` and ``delivery.py``
bring the build to the nodes, ``work.py`` is the kubernetes layer's local work.
"""
