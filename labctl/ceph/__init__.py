"""Ceph from the operator's side: cephx keys, the cluster as its monitors answer, local work."""
