"""labctl.inventory."""
