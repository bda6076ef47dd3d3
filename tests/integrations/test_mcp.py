"""``burnlink mcp`` driven by the official MCP SDK's own client over stdio, against a real
server: values go from files and variables to links and from links to private files, and
never into a tool's answer unless the user allowed it."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from burnlink import Client as Burnlink
from burnlink.mcp_server import McpOptions, build_server
from burnlink.request_crypto import KeyPair, SealedAnswer, open_answer
from tests.cli.harness import running_server, server_settings

pytestmark = pytest.mark.anyio

VALUE = "sk_live_5f2a9c-NEVER-IN-CONTEXT"
FILE_VALUE = b"-----BEGIN KEY-----\nfile-secret-XYZ\n-----END KEY-----\n"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server(server_settings()) as base:
        yield base


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agent")
    (path / "deploy.pem").write_bytes(FILE_VALUE)
    return path


@asynccontextmanager
async def agent(server: str, workdir: Path, *flags: str) -> AsyncIterator[Client]:
    """An MCP client connected to ``burnlink mcp`` started as an agent would start it."""
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "burnlink", "mcp", "--server", server, "--allow-env", "DEPLOY_*", *flags],
        env={"DEPLOY_TOKEN": VALUE, "OTHER_SECRET": "not-allowed", "BURNLINK_TOKEN": ""},
        cwd=str(workdir),
    )
    async with Client(parameters) as client:
        yield client


def answer_text(result: Any) -> str:
    """Everything a tool's answer puts in the model's context."""
    texts = [block.text for block in result.content if hasattr(block, "text")]
    return "\n".join(texts) + json.dumps(result.structured_content)


def written(path: str) -> tuple[bytes, str, int, int]:
    """A written file's content, name, mode and its directory's mode."""
    file = Path(path)
    mode, parent = file.stat().st_mode, file.parent.stat().st_mode
    return file.read_bytes(), file.name, stat.S_IMODE(mode), stat.S_IMODE(parent)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, answer_text(result)
    structured: dict[str, Any] = result.structured_content
    return structured


async def test_the_tools_share_get_check_and_burn_without_the_value_in_context(
    server: str, workdir: Path
) -> None:
    async with agent(server, workdir) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        from_env = await client.call_tool("share_secret", {"env_var": "DEPLOY_TOKEN"})
        from_file = await client.call_tool(
            "share_secret", {"file_path": "deploy.pem", "views": 2, "ttl_seconds": 600}
        )
        file_link = from_file.structured_content["url"]
        fetched = await client.call_tool("get_secret", {"link": file_link})
        status = await call(
            client, "secret_status", manage_link=from_file.structured_content["manage_url"]
        )
        burned = await call(
            client, "burn_secret", manage_link=from_file.structured_content["manage_url"]
        )

    assert names == {
        "share_secret",
        "get_secret",
        "secret_status",
        "burn_secret",
        "create_request",
    }
    for result in (from_env, from_file, fetched):
        assert not result.is_error, answer_text(result)
        assert VALUE not in answer_text(result)
        assert "file-secret-XYZ" not in answer_text(result)
    with Burnlink() as reader:
        assert reader.get(from_env.structured_content["url"]) == VALUE.encode()
    assert written(fetched.structured_content["path"]) == (FILE_VALUE, "deploy.pem", 0o600, 0o700)
    assert fetched.structured_content["views_left"] == 1
    assert (status["state"], status["views_used"]) == ("active", 1)
    assert burned == {"burned": True}
    with Burnlink() as reader, pytest.raises(Exception, match="does not exist"):
        reader.get(file_link)


def prepare(tmp_path: Path, workdir: Path) -> tuple[Path, Path]:
    """A file outside the allowed directory, one inside that must not be overwritten; the
    outside file and the allowed directory, resolved."""
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    (workdir / "taken.txt").write_text("keep me")
    return outside, workdir.resolve()


async def test_the_users_limits_are_kept_and_refusals_say_why(
    server: str, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside, allowed = prepare(tmp_path, workdir)
    with Burnlink(server) as sender:
        link = sender.share("for the agent", views=3).url
    # The same server in this process (the MCP SDK's in-memory transport), as `burnlink mcp`
    # would build it in the agent's working directory, with DEPLOY_* allowed.
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("DEPLOY_TOKEN", VALUE)
    monkeypatch.setenv("OTHER_SECRET", "not-allowed")
    options = McpOptions(
        server=server, token=None, allowed_dirs=(allowed,), allowed_env=("DEPLOY_*",)
    )

    async with Client(build_server(options)) as client:
        other_env = await client.call_tool("share_secret", {"env_var": "OTHER_SECRET"})
        other_dir = await client.call_tool("share_secret", {"file_path": str(outside)})
        traversal = await client.call_tool("share_secret", {"file_path": "../" + outside.name})
        both = await client.call_tool(
            "share_secret", {"env_var": "DEPLOY_TOKEN", "file_path": "deploy.pem"}
        )
        printing = await client.call_tool("get_secret", {"link": link, "print_value": True})
        overwrite = await client.call_tool("get_secret", {"link": link, "output_path": "taken.txt"})
        bad_link = await client.call_tool("get_secret", {"link": "https://x.example/s/nope"})
        into = await call(client, "get_secret", link=link, output_path="out/../fetched.txt")

    for result in (other_env, other_dir, traversal, both, printing, overwrite, bad_link):
        assert result.is_error
    assert "--allow-env" in answer_text(other_env)
    assert "not-allowed" not in answer_text(other_env)
    assert "--allow-dir" in answer_text(other_dir)
    assert "--allow-dir" in answer_text(traversal)
    assert "--allow-print" in answer_text(printing)
    assert "must be a new file" in answer_text(overwrite)  # refused before the view
    assert written(str(workdir / "taken.txt"))[0] == b"keep me"
    assert "for the agent" not in answer_text(printing)
    assert "malformed secret id" in answer_text(bad_link)
    assert written(str(workdir / "fetched.txt"))[0] == b"for the agent"
    assert into["views_left"] == 2  # the refused calls took no view


async def test_with_allow_print_the_value_is_returned_when_asked(
    server: str, workdir: Path
) -> None:
    with Burnlink(server) as sender:
        link = sender.share("printable").url

    async with agent(server, workdir, "--allow-print") as client:
        result = await call(client, "get_secret", link=link, print_value=True)

    assert result["value"]["secret"] == "printable"


async def test_create_request_returns_the_link_to_send_and_keeps_the_key_in_a_private_file(
    server: str, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    allowed = prepare(tmp_path, workdir)[1]
    options = McpOptions(server=server, token=None, allowed_dirs=(allowed,), allowed_env=())

    async with Client(build_server(options)) as client:
        made = await client.call_tool(
            "create_request", {"description": "the staging DB password", "answer_views": 1}
        )
        outside = await client.call_tool(
            "create_request",
            {"description": "x", "output_path": str(tmp_path / "requester.url")},
        )

    assert not made.is_error, answer_text(made)
    shown = made.structured_content
    assert shown["request_url"].startswith(f"{server}/r/{shown['id']}#")
    content, name, mode, _ = written(shown["requester_link_path"])
    requester_url = content.decode().strip()
    assert (name, mode) == (f"burnlink-request-{shown['id']}.url", 0o600)
    assert Path(shown["requester_link_path"]).parent == allowed
    token, _, private_key = requester_url.partition("#")[2].partition(".")
    assert private_key not in answer_text(made)  # the key never enters the model's context
    assert token not in answer_text(made)
    assert outside.is_error
    assert "--allow-dir" in answer_text(outside)
    assert not (tmp_path / "requester.url").exists()
    assert answered_and_opened(server, shown["request_url"], requester_url) == b"hunter2"


def answered_and_opened(server: str, request_url: str, requester_url: str) -> bytes:
    """Someone answers ``request_url``; the requester's link opens the answer."""
    with Burnlink() as answerer:
        answerer.answer(request_url, "hunter2")
    request_id = request_url.partition("/r/")[2].partition("#")[0]
    token, _, private_key = requester_url.partition("#")[2].partition(".")
    opened = httpx.post(
        f"{server}/api/v1/requests/{request_id}/open",
        headers={"authorization": f"Bearer {token}"},
    ).json()
    sealed = SealedAnswer.from_json(opened["answer"])
    return open_answer(sealed, KeyPair.from_text(private_key), request_id).content
