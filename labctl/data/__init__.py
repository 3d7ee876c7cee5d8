"""Data files shipped with labctl: the inventory schema, and the shell scripts it runs
(``shell``)."""
