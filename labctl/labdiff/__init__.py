"""The whole lab's difference between its inventory and what runs (``labctl plan``).

``skew`` holds the version-skew rules (pure), ``running`` reads what runs (the
journal, the APIs of Kubernetes, etcd and Ceph), and ``diff`` puts the two and the
layers' dry plans together into one report, in text and JSON.
"""
