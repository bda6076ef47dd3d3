"""Tests of the integrations: MCP server, CI scripts, Ansible collection, Slack command."""
