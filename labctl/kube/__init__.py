"""The lab's Kubernetes cluster from the operator's machine: sessions and the layer's local work."""
