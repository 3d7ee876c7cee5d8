"""labctl: declarative bare-metal lab provisioning."""

__version__ = "0.1.0"
