"""labctl.engine."""
