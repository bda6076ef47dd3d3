"""``burnlink mcp``: a Model Context Protocol server over stdio, for AI coding agents
(docs/integrations.md § MCP).

An agent shares, checks and burns secrets, and asks for them, without their values entering its
context: a value to share is read here, from a file or an environment variable the agent names;
a value taken from a link is written to a file (mode 0600) and only its path is returned; the
requester's link of a request (it holds the request's private key) goes to such a file too.
The model sees links and paths, never values, unless the user started the server with
``--allow-print``.

What the agent may touch is the user's choice, made when the server starts: files only under
``--allow-dir`` directories (default: the working directory), environment variables only
those ``--allow-env`` patterns name (default: none). A secret link is itself a capability
(whoever holds it can read the secret once), so these limits keep a prompt-injected agent
from turning any readable file into a link.

Built on the official ``mcp`` SDK (the ``burnlink[mcp]`` extra), imported only here.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from burnlink.errors import BurnlinkError, InvalidInput

if TYPE_CHECKING:
    from burnlink.sdk import AsyncClient

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
INSTRUCTIONS = (
    "burnlink shares secrets through one-time, end-to-end encrypted links. Never ask the user"
    " to paste a secret into the conversation: share it from a file path or an environment"
    " variable name with share_secret, which returns only the link. get_secret writes the value"
    " to a private file and returns its path; hand that path to the program that needs it."
    " To ask someone for a secret, create_request returns the link to send them; the key that"
    " opens the answer stays in a private file whose path it returns, for the user."
    " Treat links as secrets: whoever holds one can read the secret."
)


@dataclass(frozen=True, slots=True)
class McpOptions:
    """What the user allowed when starting ``burnlink mcp``."""

    server: str
    """The burnlink server secrets are shared on."""
    token: str | None
    """An API token (``blk_…``) to share as its user."""
    allowed_dirs: tuple[Path, ...]
    """Resolved directories the agent may read files from and write files into."""
    allowed_env: tuple[str, ...]
    """Patterns (``fnmatch``) of environment variables the agent may read."""
    allow_print: bool = False
    """Whether ``get_secret`` may return a value to the model when asked."""


class _Tools:
    """The tools, with the user's limits; each refusal is a ``BurnlinkError``."""

    def __init__(self, options: McpOptions) -> None:
        self.options = options

    def _client(self) -> AsyncClient:
        from burnlink.sdk import AsyncClient

        return AsyncClient(self.options.server, token=self.options.token)

    def _inside(self, given: str, field: str) -> Path:
        path = Path(given).expanduser()
        resolved = path.resolve() if path.is_absolute() else (Path.cwd() / path).resolve()
        if not any(resolved.is_relative_to(d) for d in self.options.allowed_dirs):
            raise InvalidInput(
                field, "is outside the directories this server may use (burnlink mcp --allow-dir)"
            )
        return resolved

    def _env(self, name: str, field: str) -> str:
        if not any(fnmatch.fnmatchcase(name, p) for p in self.options.allowed_env):
            raise InvalidInput(
                field, f"{name!r} is not a variable this server may read (burnlink mcp --allow-env)"
            )
        value = os.environ.get(name)
        if not value:
            raise InvalidInput(
                field, f"{name!r} is not set, or is empty, in the server's environment"
            )
        return value

    async def share(
        self,
        file_path: str | None,
        env_var: str | None,
        ttl_seconds: int | None,
        views: int | None,
        passphrase_env: str | None,
        recipients: list[str] | None,
        allowed_ips: list[str] | None,
        label: str | None,
    ) -> dict[str, Any]:
        if (file_path is None) == (env_var is None):
            raise InvalidInput("file_path", "give exactly one of file_path and env_var")
        passphrase = self._env(passphrase_env, "passphrase_env") if passphrase_env else None
        async with self._client() as client:
            if file_path is not None:
                path = self._inside(file_path, "file_path")
                policy = await client.policy()
                if not path.is_file():
                    raise InvalidInput("file_path", "is not a readable file")
                if path.stat().st_size > policy.max_bytes:
                    raise InvalidInput(
                        "file_path",
                        f"is larger than the server's limit of {policy.max_bytes} bytes",
                    )
                try:
                    content = path.read_bytes()
                except OSError as exc:
                    raise InvalidInput("file_path", f"cannot be read ({exc.strerror})") from None
                shared = await client.share(
                    content,
                    filename=path.name,
                    ttl=ttl_seconds,
                    views=views,
                    passphrase=passphrase,
                    recipients=recipients or [],
                    allowed_ips=allowed_ips or [],
                    label=label or "",
                )
            else:
                value = self._env(str(env_var), "env_var")
                shared = await client.share(
                    value,
                    ttl=ttl_seconds,
                    views=views,
                    passphrase=passphrase,
                    recipients=recipients or [],
                    allowed_ips=allowed_ips or [],
                    label=label or "",
                )
        return {
            "url": shared.url,
            "manage_url": shared.manage_url,
            "expires_at": shared.expires_at,
            "max_views": shared.max_views,
        }

    async def get(
        self,
        link: str,
        output_path: str | None,
        passphrase_env: str | None,
        print_value: bool,
    ) -> dict[str, Any]:
        if print_value and not self.options.allow_print:
            raise InvalidInput(
                "print_value",
                "is off: values never enter the conversation unless the user starts the server"
                " with --allow-print",
            )
        passphrase = self._env(passphrase_env, "passphrase_env") if passphrase_env else None
        # Checked before the view is taken: a value that cannot be written would be lost.
        target = self._inside(output_path, "output_path") if output_path else None
        if target is not None and (target.exists() or not target.parent.is_dir()):
            raise InvalidInput("output_path", "must be a new file in an existing directory")
        async with self._client() as client:
            revealed = await client.reveal(link, passphrase=passphrase)
        if target is None:
            name = revealed.name if revealed.name and _SAFE_NAME.fullmatch(revealed.name) else None
            target = Path(tempfile.mkdtemp(prefix="burnlink-")) / (name or "secret")
        _write_new_private(target, revealed.content)
        answer: dict[str, Any] = {
            "path": str(target),
            "bytes": len(revealed.content),
            "views_left": revealed.views_left,
            "file_name": revealed.name,
            "mime": revealed.mime,
        }
        if print_value:
            answer["value"] = revealed.answer()
        return answer

    async def status(self, manage_link: str) -> dict[str, Any]:
        from burnlink.cli.output import receipt_json

        async with self._client() as client:
            return receipt_json(await client.status(manage_link))

    async def burn(self, manage_link: str) -> dict[str, Any]:
        async with self._client() as client:
            await client.burn(manage_link)
        return {"burned": True}

    async def create_request(
        self,
        description: str,
        ttl_seconds: int | None,
        answer_views: int | None,
        answer_ttl_seconds: int | None,
        recipients: list[str] | None,
        output_path: str | None,
    ) -> dict[str, Any]:
        # The requester's own link holds the private key: it goes to a new private file, never
        # into the answer. Its place is checked before the request is made (a key that cannot
        # be written would leave an answer nobody can open).
        if output_path is not None:
            target = self._inside(output_path, "output_path")
            if target.exists() or not target.parent.is_dir():
                raise InvalidInput("output_path", "must be a new file in an existing directory")
        else:
            if not self.options.allowed_dirs or not self.options.allowed_dirs[0].is_dir():
                raise InvalidInput("output_path", "no --allow-dir directory to write the link to")
            target = None
        async with self._client() as client:
            made = await client.request(
                description,
                ttl=ttl_seconds,
                answer_ttl=answer_ttl_seconds,
                answer_views=answer_views,
                recipients=recipients or [],
            )
        if target is None:
            target = self.options.allowed_dirs[0] / f"burnlink-request-{made.id}.url"
        _write_new_private(
            target, (made.requester_url + "\n").encode(), lost="the request was made, unopenable"
        )
        return {
            "request_url": made.url,
            "requester_link_path": str(target),
            "id": made.id,
            "expires_at": made.expires_at,
        }


def _write_new_private(path: Path, content: bytes, *, lost: str = "the view was used") -> None:
    # A new file, readable by the owner only; never through a link planted at the path.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
    except OSError as exc:
        raise InvalidInput("output_path", f"cannot be written ({exc.strerror}); {lost}") from None


def build_server(options: McpOptions) -> MCPServer:
    """The MCP server with burnlink's tools, under ``options``' limits."""
    from burnlink import __version__

    tools = _Tools(options)
    server: MCPServer = MCPServer("burnlink", instructions=INSTRUCTIONS, version=__version__)

    def refused(exc: BurnlinkError) -> ToolError:
        # burnlink's messages never hold a key, token or content.
        return ToolError(f"{exc.code or type(exc).__name__}: {exc}")

    @server.tool()
    async def share_secret(
        file_path: str | None = None,
        env_var: str | None = None,
        ttl_seconds: int | None = None,
        views: int | None = None,
        passphrase_env: str | None = None,
        recipients: list[str] | None = None,
        allowed_ips: list[str] | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """Share a secret as a one-time link. The value is read on this machine from
        file_path or from the environment variable env_var (give exactly one) and never
        returned: the answer is the link (url, to send) and the manage link (manage_url, for
        status and burn). Optional: ttl_seconds, views (default 1), passphrase_env (an
        environment variable holding a passphrase), recipients (emails, group:NAME,
        domain:NAME of signed-in users), allowed_ips, label."""
        try:
            return await tools.share(
                file_path,
                env_var,
                ttl_seconds,
                views,
                passphrase_env,
                recipients,
                allowed_ips,
                label,
            )
        except BurnlinkError as exc:
            raise refused(exc) from None

    @server.tool()
    async def get_secret(
        link: str,
        output_path: str | None = None,
        passphrase_env: str | None = None,
        print_value: bool = False,
    ) -> dict[str, Any]:
        """Open a secret link (this uses one of its views) and write the value to a new file,
        readable only by the user (mode 0600): output_path, or a new private file. Returns
        the path, never the value. print_value returns the value too, only if the user
        started the server with --allow-print."""
        try:
            return await tools.get(link, output_path, passphrase_env, print_value)
        except BurnlinkError as exc:
            raise refused(exc) from None

    @server.tool()
    async def secret_status(manage_link: str) -> dict[str, Any]:
        """The receipt of a shared secret, from its manage link: state (active, viewed,
        burned, locked, expired), views used and left, and events. Never the value."""
        try:
            return await tools.status(manage_link)
        except BurnlinkError as exc:
            raise refused(exc) from None

    @server.tool()
    async def burn_secret(manage_link: str) -> dict[str, Any]:
        """Destroy a shared secret now, from its manage link; its link stops working."""
        try:
            return await tools.burn(manage_link)
        except BurnlinkError as exc:
            raise refused(exc) from None

    @server.tool()
    async def create_request(
        description: str,
        ttl_seconds: int | None = None,
        answer_views: int | None = None,
        answer_ttl_seconds: int | None = None,
        recipients: list[str] | None = None,
        output_path: str | None = None,
    ) -> dict[str, Any]:
        """Ask someone for a secret: returns request_url, the link to send to whoever has
        the secret (they answer it in a browser or with `burnlink answer`). The key that opens
        the answer is made here and never returned: the requester's own link, which holds it,
        is written to a new private file (mode 0600), output_path or one in the allowed
        directory, and only its path (requester_link_path) is returned; the user opens that
        link in a browser to read the answer. Optional: ttl_seconds
        (how long the request stays open), answer_views, answer_ttl_seconds, recipients
        (emails of signed-in users who may answer)."""
        try:
            return await tools.create_request(
                description, ttl_seconds, answer_views, answer_ttl_seconds, recipients, output_path
            )
        except BurnlinkError as exc:
            raise refused(exc) from None

    return server


def run(options: McpOptions) -> None:
    """Serve MCP on stdin and stdout until the client closes them."""
    build_server(options).run("stdio")
