"""labctl.sim."""
