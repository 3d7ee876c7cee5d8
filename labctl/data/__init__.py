"""Data files shipped with labctl (the inventory schema)."""
