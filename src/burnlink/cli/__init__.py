"""The command-line client and server launcher: ``burnlink`` (see ``burnlink.cli.main``)."""
