"""Links as the CLI reads them: ``burnlink.links`` (shared with the SDK), under its old name."""

from burnlink.links import (
    MANAGE,
    SECRET,
    Link,
    parse_manage_link,
    parse_secret_link,
    parse_server,
    secret_link,
)

__all__ = [
    "MANAGE",
    "SECRET",
    "Link",
    "parse_manage_link",
    "parse_secret_link",
    "parse_server",
    "secret_link",
]
