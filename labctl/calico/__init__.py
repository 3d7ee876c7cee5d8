"""The lab's BGP fabric: who peers with whom, pod blocks, status (docs/calico.md)."""
