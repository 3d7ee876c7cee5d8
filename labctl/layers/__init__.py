"""labctl.layers."""
