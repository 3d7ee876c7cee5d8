"""Renders only the simulated lab needs, beside its platform (``labctl/sim/platform.py``).

What a real lab gets from elsewhere, the simulated one gets from here: BIRD 1.6's
configuration and unit where calico-node would run (``bird.py``, ``calico_node.py``),
definitions of Calico's kinds where no manifest is named (``calico_standin.py``), and
the kubelet, kube-proxy and containerd settings nodes sharing one kernel need
(``kubernetes.py``). Pure like ``labctl/render/``: data in, text out. Only
``labctl/sim/`` and ``labctl/cli/`` import these (tests/unit/test_architecture.py).
"""
