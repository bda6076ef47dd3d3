"""Tests of the deployment files in ``deploy/`` and of installing the built wheel."""
