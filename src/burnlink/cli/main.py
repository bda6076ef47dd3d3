"""The ``burnlink`` command: ``serve``, ``share``, ``get``, ``status``, ``burn``, ``request``,
``answer``, ... (docs/cli.md).

This module holds only the command line (options, help, exit codes through ``output``); the
work is in ``burnlink.cli.actions``, imported inside each command so that ``--help`` is quick.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import ClassVar

import click

from burnlink import __version__
from burnlink.cli.output import exit_codes_help, reporting

DEFAULT_SERVER = "http://127.0.0.1:8000"

_EPILOG = exit_codes_help()

_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result, or the error, as JSON."
)
_token_option = click.option(
    "--token",
    envvar="BURNLINK_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    help="A personal API token (blk_…) to act as its user; default: the one `login` kept.",
)
_server_option = click.option(
    "--server",
    envvar="BURNLINK_SERVER",
    default=DEFAULT_SERVER,
    show_default=True,
    show_envvar=True,
    metavar="URL",
    help="The burnlink server.",
)


class LazyGroup(click.Group):
    """A group whose heavier command groups are imported only when they are asked for, so
    that ``burnlink share`` does not load the audit log's modules (click's documented
    lazy-loading pattern)."""

    LAZY: ClassVar[dict[str, tuple[str, str]]] = {
        "audit": ("audit", "audit"),
        "receipt": ("audit", "receipt"),
        "unlock": ("unlock", "unlock"),
    }
    """Command name -> (module of ``burnlink.cli``, attribute)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.LAZY:
            return super().get_command(ctx, cmd_name)
        module, name = self.LAZY[cmd_name]
        command: click.Command = getattr(importlib.import_module(f"burnlink.cli.{module}"), name)
        return command


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG
)
@click.version_option(__version__, prog_name="burnlink", message="%(prog)s %(version)s")
def main() -> None:
    """Share secrets through self-destructing, end-to-end encrypted links.

    The secret is encrypted on this machine; its key travels only in the link's #fragment,
    which is never sent to the server.
    """


@main.command(epilog=_EPILOG)
@click.option("--host", help="Address to listen on (BURNLINK_HOST; default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (BURNLINK_PORT; default 8000).")
@click.option(
    "--store",
    metavar="URL",
    help="sqlite:///path, redis://host, postgresql://host or memory:// (BURNLINK_STORE).",
)
@click.option("--workers", type=int, metavar="N", help="Worker processes (BURNLINK_WORKERS).")
@click.option(
    "--base-url",
    metavar="URL",
    help="Public base of links, e.g. https://secrets.example.com (BURNLINK_BASE_URL).",
)
def serve(
    host: str | None, port: int | None, store: str | None, workers: int | None, base_url: str | None
) -> None:
    """Run the burnlink server.

    Options override the BURNLINK_* environment (docs/configuration.md). An invalid setting
    or an unusable store stops it at once with one line on stderr.
    """
    with reporting(as_json=False):
        from burnlink.cli import actions

        actions.serve(host=host, port=port, store=store, workers=workers, base_url=base_url)


@main.command(epilog=_EPILOG)
@click.option(
    "--ttl",
    metavar="DURATION",
    help="How long the link lives: seconds, or 30s, 10m, 1h, 7d, 1w. Default: the server's.",
)
@click.option(
    "--views",
    type=click.IntRange(min=1),
    metavar="N",
    help="How many times the secret can be read (default 1).",
)
@click.option(
    "--passphrase",
    "ask_passphrase",
    is_flag=True,
    help="Also protect it with a passphrase, asked twice on the terminal.",
)
@click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Protect it with the passphrase in this file (one trailing newline is ignored).",
)
@click.option(
    "--file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Share this file, with its name and type, instead of standard input.",
)
@click.option(
    "--allow-ip",
    "allow_ips",
    multiple=True,
    metavar="CIDR",
    help="Only this IP or network may reveal it (IPv4 or IPv6; repeat for more).",
)
@click.option(
    "--allow-country",
    "allow_countries",
    multiple=True,
    metavar="CC",
    help="Only reveals from this country (ISO 3166 code, e.g. DE; repeat for more).",
)
@click.option(
    "--deny-country",
    "deny_countries",
    multiple=True,
    metavar="CC",
    help="No reveals from this country (repeat for more).",
)
@click.option(
    "--recipient-email",
    metavar="ADDRESS",
    help="The recipient must first enter a code mailed to this address.",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="ENTRY",
    help="Only this signed-in recipient may reveal: name@example.com, group:NAME or"
    " domain:example.com (repeat for more; the server needs sign-in configured).",
)
@click.option(
    "--require-mfa",
    is_flag=True,
    help="With --recipient: the recipient must have signed in with a second factor at most"
    " five minutes ago (in a browser: an API token never counts).",
)
@click.option(
    "--notify-url",
    metavar="URL",
    help="Send a signed webhook to this URL when the secret is viewed, burned or expires.",
)
@_server_option
@click.option(
    "--label",
    metavar="TEXT",
    help='Your own name for the secret, shown in "my secrets" (never the content).',
)
@_token_option
@_json_option
def share(
    ttl: str | None,
    views: int | None,
    ask_passphrase: bool,
    passphrase_file: Path | None,
    file: Path | None,
    allow_ips: tuple[str, ...],
    allow_countries: tuple[str, ...],
    deny_countries: tuple[str, ...],
    recipient_email: str | None,
    recipients: tuple[str, ...],
    require_mfa: bool,
    notify_url: str | None,
    server: str,
    label: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Encrypt a secret here and print its link.

    The secret is read from --file, else from standard input when it is piped (the exact
    bytes), else from a prompt that does not echo. Only the link goes to stdout; the manage
    link (status, burn) goes to stderr. If BURNLINK_PASSPHRASE is set, the secret is
    protected with it.

    \b
      burnlink share < key.txt
      echo -n "$TOKEN" | burnlink share --ttl 1h --views 2 --json
    """
    with reporting(as_json):
        from burnlink.cli import actions

        actions.share(
            server=server,
            ttl=ttl,
            views=views,
            ask_passphrase=ask_passphrase,
            passphrase_file=passphrase_file,
            file=file,
            as_json=as_json,
            rules={
                name: value
                for name, value in {
                    "allowed_ips": list(allow_ips),
                    "allowed_countries": list(allow_countries),
                    "denied_countries": list(deny_countries),
                    "recipient_email": recipient_email,
                    "recipients": list(recipients),
                    "require_mfa": require_mfa,
                    "notify_url": notify_url,
                    "label": label,
                }.items()
                if value
            },
            token=token,
        )


@main.command(epilog=_EPILOG)
@click.argument("link")
@click.option("--key", metavar="KEY", help="The key, for a link that was sent without its #KEY.")
@click.option(
    "--otp",
    metavar="CODE",
    help="The code mailed to the recipient, for a secret that asks for one (or BURNLINK_OTP).",
)
@click.option(
    "--output",
    "-o",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the secret to this file (mode 600) instead of stdout.",
)
@_token_option
@_json_option
def get(
    link: str,
    key: str | None,
    otp: str | None,
    output_path: Path | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Read a secret: this uses up one of its views.

    Writes the exact bytes to stdout (or --output). For a passphrase-protected secret the
    passphrase comes from BURNLINK_PASSPHRASE, else it is asked on the terminal. For a secret
    bound to a recipient's address, the server mails a code, asked on the terminal (or given
    with --otp / BURNLINK_OTP). For a secret bound to signed-in recipients, the reveal is
    sent again with your API token (--token, else the one `burnlink login` kept for the link's
    server; BURNLINK_TOKEN only when BURNLINK_SERVER is the link's server, since a link can
    name any server) once the server asks for a sign-in; other secrets never see it. A secret
    that requires MFA opens only in a browser.

    \b
      burnlink get "$LINK" > key.txt
    """
    if as_json and output_path is not None:
        raise click.UsageError("--json and --output cannot be used together")
    with reporting(as_json):
        from burnlink.cli import actions

        # BURNLINK_TOKEN is meant for BURNLINK_SERVER; a token typed as --token is for this link.
        source = click.get_current_context().get_parameter_source("token")
        from_environment = source is click.core.ParameterSource.ENVIRONMENT
        actions.get(
            link=link,
            key=key,
            output_path=output_path,
            as_json=as_json,
            otp=otp,
            token=token,
            token_server=os.environ.get("BURNLINK_SERVER", DEFAULT_SERVER)
            if from_environment
            else None,
        )


@main.command("request", epilog=_EPILOG)
@click.argument("description")
@_server_option
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for the answer and write it out (the private key lives only in this process);"
    " --no-wait prints the requester's own link for the web page instead.",
)
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Give up waiting after this long (exit 17); default: until the request expires.",
)
@click.option("--ttl", metavar="TTL", help="How long the request stays open (e.g. 1h, 30m, 3600).")
@click.option("--answer-ttl", metavar="TTL", help="How long the answer lives once given.")
@click.option("--views", type=int, help="Views the answer allows (default 1).")
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="WHO",
    help="Only this signed-in user may answer: user@example.com, group:NAME or"
    " domain:example.com (repeatable; needs sign-in on the server).",
)
@click.option(
    "--output",
    "-o",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the answer to this file (mode 600) instead of stdout.",
)
@_token_option
@_json_option
def request_command(
    description: str,
    server: str,
    wait: bool,
    timeout: int | None,
    ttl: str | None,
    answer_ttl: str | None,
    views: int | None,
    recipients: tuple[str, ...],
    output_path: Path | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Ask someone for a secret, so that only you can open the answer.

    Prints the request link (on stderr with --wait) to send to whoever has the secret; they
    answer with `burnlink answer LINK` or in a browser. The answer is encrypted to a key
    made here, whose private half never leaves this process. With --wait (the default) this
    waits without polling hard (a long poll), then writes the answer to stdout or --output.

    \b
      burnlink request "staging database password" > db.txt
      burnlink request "deploy key" --timeout 600 -o deploy.key
    """
    if as_json and output_path is not None:
        raise click.UsageError("--json and --output cannot be used together")
    with reporting(as_json):
        from burnlink.cli import inputs, requests
        from burnlink.cli.signin import saved_token

        base_token = token
        if base_token is None:
            from burnlink.cli import links

            base_token = saved_token(links.parse_server(server))
        requests.request(
            server=server,
            description=description,
            wait=wait,
            timeout=timeout,
            ttl=inputs.parse_ttl(ttl) if ttl else None,
            answer_ttl=inputs.parse_ttl(answer_ttl) if answer_ttl else None,
            answer_views=views,
            output_path=output_path,
            as_json=as_json,
            api_token=base_token,
            recipients=recipients,
        )


@main.command(epilog=_EPILOG)
@click.argument("link")
@click.option(
    "--file",
    "-f",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Send this file (default: standard input, else a hidden prompt).",
)
@_token_option
@_json_option
def answer(link: str, file: Path | None, token: str | None, as_json: bool) -> None:
    """Answer a request for a secret, once: only its requester can open the answer.

    The secret is read from --file, else standard input, else a hidden prompt. Before
    anything is sent, the request's public key is checked against the fingerprint in the
    link's #fragment: a key the server swapped in is refused (exit 8) and nothing is sent.

    \b
      printf %s "$DB_PASSWORD" | burnlink answer "$REQUEST_LINK"
    """
    with reporting(as_json):
        from burnlink.cli import requests
        from burnlink.cli.signin import saved_token

        parsed = requests.parse_request_link(link)
        requests.answer(
            link=link,
            file=file,
            as_json=as_json,
            api_token=token if token is not None else saved_token(parsed.base),
        )


@main.command(epilog=_EPILOG)
@click.argument("manage_link", metavar="MANAGE_LINK")
@_json_option
def status(manage_link: str, as_json: bool) -> None:
    """Show a secret's receipt: state, times, views and who opened it.

    Needs the manage link that `burnlink share` printed.
    """
    with reporting(as_json):
        from burnlink.cli import actions

        actions.status(link=manage_link, as_json=as_json)


@main.command(epilog=_EPILOG)
@click.argument("manage_link", metavar="MANAGE_LINK")
def burn(manage_link: str) -> None:
    """Destroy a secret now, whatever views or time it had left.

    Needs the manage link that `burnlink share` printed. Burning an ended secret is not an
    error.
    """
    with reporting(as_json=False):
        from burnlink.cli import actions

        actions.burn(link=manage_link)


@main.command("verify-site", epilog=_EPILOG)
@click.argument("url")
@_json_option
def verify_site(url: str, as_json: bool) -> None:
    """Check that a server sends the published code of this burnlink version.

    Fetches the server's pages (compose, reveal, receipt, how it works), and every script,
    stylesheet and message file they reference. Each must carry an integrity hash equal to
    this package's copy, and the bytes served must be the package's own. A link may be given
    instead of the server's address; its #fragment is never sent. Prints one line per
    mismatch and exits 8 if there is any.

    \b
      burnlink verify-site https://secrets.example.com
    """
    with reporting(as_json):
        from burnlink.cli import actions

        actions.verify_site(url=url, as_json=as_json)


@main.group()
def config() -> None:
    """Inspect the server's configuration."""


@config.command("check", epilog=_EPILOG)
@_json_option
def config_check(as_json: bool) -> None:
    """Validate the settings (BURNLINK_* and the BURNLINK_CONFIG file) and print them, with
    passwords masked. Exits 7 with one line per problem when they are invalid.
    """
    with reporting(as_json):
        from burnlink.cli import actions

        actions.config_check(as_json=as_json)


@main.command(epilog=_EPILOG)
@_server_option
@click.option(
    "--token",
    envvar="BURNLINK_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    help="Keep this API token (blk_…) instead of the device sign-in; checked with the server.",
)
@click.option(
    "--paste",
    is_flag=True,
    help="Paste an API token (made at the server's page) instead of the device sign-in.",
)
@click.option(
    "--name", metavar="NAME", help='The new token\'s name (default "burnlink CLI on <hostname>").'
)
@click.option(
    "--timeout",
    type=click.IntRange(1, 3600),
    default=900,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the approval.",
)
def login(server: str, token: str | None, paste: bool, name: str | None, timeout: int) -> None:
    """Sign in to the server and keep an API token for the other commands.

    With the server's single sign-on, prints an address and a code: open it in any browser,
    sign in there and approve; the server then makes an API token. With --token or --paste,
    or when the server does not offer this, takes a token made at the server's "my secrets"
    page instead (asked without echo, or read from stdin). The token is kept for the server
    in your configuration directory, readable by you only; `share` then creates as you.
    BURNLINK_TOKEN overrides it for the other commands.
    """
    with reporting(as_json=False):
        from burnlink.cli.login import login as run

        run(server, token=token, paste=paste, name=name, timeout=timeout)


@main.command(epilog=_EPILOG)
@_server_option
@_token_option
@click.option("--revoke", is_flag=True, help="Also revoke the token on the server.")
def logout(server: str, token: str | None, revoke: bool) -> None:
    """Forget the API token kept for the server (and with --revoke, revoke it there)."""
    with reporting(as_json=False):
        from burnlink.cli import signin

        signin.logout(server=server, token=token, revoke=revoke)


@main.command(epilog=_EPILOG)
@_server_option
@_token_option
@_json_option
def whoami(server: str, token: str | None, as_json: bool) -> None:
    """Print who the API token acts for on the server."""
    with reporting(as_json):
        from burnlink.cli import signin

        signin.whoami(server=server, token=token, as_json=as_json)


@main.command(epilog=_EPILOG)
@_server_option
@_token_option
@click.option(
    "--allow-dir",
    "allow_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    metavar="DIR",
    help="A directory the agent may share files from and write secrets into (repeat for"
    " more; default: the working directory).",
)
@click.option(
    "--allow-env",
    "allow_env",
    multiple=True,
    metavar="PATTERN",
    help="Environment variables the agent may share, by name or pattern (DEPLOY_*; repeat"
    " for more; default: none).",
)
@click.option(
    "--allow-print",
    is_flag=True,
    help="Let get_secret return a value to the model when it asks (off: only a file path).",
)
def mcp(
    server: str,
    token: str | None,
    allow_dirs: tuple[Path, ...],
    allow_env: tuple[str, ...],
    allow_print: bool,
) -> None:
    """Run a Model Context Protocol server on stdin/stdout, for AI agents.

    Its tools share a secret read from a file or an environment variable (the model gets only
    the link), write a secret from a link into a private file (the model gets only the path),
    and check or burn a secret by its manage link. Needs the mcp extra:
    pip install 'burnlink[mcp]'.

    \b
      claude mcp add burnlink -- burnlink mcp --server https://secrets.example.com
    """
    with reporting(as_json=False):
        from burnlink.cli import links
        from burnlink.cli.signin import token_for

        try:
            from burnlink import mcp_server
        except ImportError:
            from burnlink.errors import InvalidInput

            raise InvalidInput(
                "mcp", "needs the mcp package: pip install 'burnlink[mcp]'"
            ) from None
        base = links.parse_server(server)
        mcp_server.run(
            mcp_server.McpOptions(
                server=base,
                token=token_for(base, token),
                allowed_dirs=tuple(p.resolve() for p in allow_dirs) or (Path.cwd().resolve(),),
                allowed_env=allow_env,
                allow_print=allow_print,
            )
        )
