"""labctl.cli."""
