"""labctl.drivers."""
