"""The lab's etcd cluster seen from the operator's machine: health, status, snapshots.

``EtcdSession`` reaches the members with labctl's own client certificate (the
``etcd-client-<operator>`` one the pki layer minted) through ``drivers/etcd.py``;
``labctl etcd`` and the etcd layer's local work both use it.
"""
