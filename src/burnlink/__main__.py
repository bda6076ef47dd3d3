"""`python -m burnlink` runs the command-line interface."""

from burnlink.cli.main import main

main()
