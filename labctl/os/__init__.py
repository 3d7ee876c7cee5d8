"""Installing servers' OS from the network: the survey that decides, and the os layer's work."""
