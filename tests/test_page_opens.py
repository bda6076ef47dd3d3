"""The queue that records link-page opens after the page has answered."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from burnlink.models import ClientInfo
from burnlink.web.page_opens import PageOpens

pytestmark = pytest.mark.anyio

CLIENT = ClientInfo(ip="198.51.100.1", user_agent="Slackbot-LinkExpanding 1.0")


async def test_page_opens_records_each_open_in_order_after_submit_returns() -> None:
    recorded: list[str] = []

    async def record(secret_id: str, client: ClientInfo) -> None:
        await anyio.lowlevel.checkpoint()
        recorded.append(secret_id)

    opens = PageOpens(record)
    async with anyio.create_task_group() as group:
        group.start_soon(opens.run)
        for n in range(5):
            opens.submit(f"id{n}", CLIENT)
        assert recorded == []  # submitting never waits for the recording
        await opens.settled()
        assert recorded == [f"id{n}" for n in range(5)]
        opens.close()


async def test_page_opens_drops_opens_when_full_instead_of_waiting() -> None:
    recorded: list[str] = []

    async def record(secret_id: str, client: ClientInfo) -> None:
        recorded.append(secret_id)

    opens = PageOpens(record, size=3)
    for n in range(5):
        opens.submit(f"id{n}", CLIENT)  # nothing drains yet: the last two do not fit

    assert opens.dropped == 2
    async with anyio.create_task_group() as group:
        group.start_soon(opens.run)
        await opens.settled()
        opens.close()
    assert recorded == ["id0", "id1", "id2"]


async def test_page_opens_keeps_recording_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    recorded: list[str] = []

    async def record(secret_id: str, client: ClientInfo) -> None:
        if secret_id == "bad":
            raise OSError("disk on fire: hunter2")
        recorded.append(secret_id)

    opens = PageOpens(record)
    async with anyio.create_task_group() as group:
        group.start_soon(opens.run)
        for secret_id in ("a", "bad", "b"):
            opens.submit(secret_id, CLIENT)
        await opens.settled()
        opens.close()

    assert recorded == ["a", "b"]
    assert "page open not recorded: OSError" in caplog.text
    assert "hunter2" not in caplog.text


async def test_page_opens_close_records_what_was_queued_then_refuses_more() -> None:
    recorded: list[str] = []

    async def record(secret_id: str, client: ClientInfo) -> None:
        recorded.append(secret_id)

    opens = PageOpens(record)
    opens.submit("queued", CLIENT)
    opens.close()
    opens.submit("late", CLIENT)
    await opens.run()

    assert recorded == ["queued"]
    assert opens.dropped == 1
