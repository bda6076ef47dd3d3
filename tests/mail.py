"""A real SMTP server on loopback (aiosmtpd) that keeps every message, for verification tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.servers import free_port


class Outbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 OK"

    def codes(self) -> list[str]:
        found = []
        for _, _, message in self.messages:
            body = message.get_payload(decode=True)
            assert isinstance(body, bytes)
            found += re.findall(r"\b(\d{6})\b", body.decode())
        return found


@pytest.fixture
def outbox() -> Iterator[Outbox]:
    """A real SMTP server on loopback that keeps what it receives."""
    handler = Outbox(free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()
