"""Ceph from the operator's side: cephx keys, the session that asks the monitors, local work."""
