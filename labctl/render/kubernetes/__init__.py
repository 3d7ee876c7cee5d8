"""What the Kubernetes layer puts on nodes and into the cluster, rendered from the inventory.

Pure: the inventory in, plain data out (dicts dumped to YAML, unit text). One
module per kind of document: ``common`` (names, paths, addresses), ``flags`` (each
component's command line, the one source for both static pods and host units),
``pods`` (static pod manifests), ``kubelet`` (KubeletConfiguration and unit),
``kubeconfig``, ``audit``, ``addons`` (RBAC, kube-proxy, CoreDNS), ``host``
(units for the host runtime), ``node`` (everything one node gets, with digests).
"""
