"""`python -m labctl` runs the CLI."""

from labctl.cli.main import run

run()
