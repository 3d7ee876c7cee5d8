"""Servers' power: requests (verbs, targets, the guard), channels (IPMI, PDU), the controller.

Both ``labctl power`` and the BMC applier of a bootstrap run go through a
``PowerSession``; the quorum guard (``quorum.py``) is pure and shared by both.
"""
