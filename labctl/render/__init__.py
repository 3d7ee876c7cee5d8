"""labctl.render."""
