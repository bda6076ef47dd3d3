"""The prompts, on a real pseudo-terminal: hidden input, and ``/dev/tty`` while stdin is piped."""

from __future__ import annotations

import os
import re
import select
import shlex
import subprocess
import sys
import time

import pytest

from tests.cli.harness import argv

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs a POSIX pseudo-terminal")

TIMEOUT = 30.0
# Make the pseudo-terminal the controlling terminal (so /dev/tty is it), then run a shell line.
_ON_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv('/bin/sh', ['sh', '-c', sys.argv[1]])"
)


def _on_terminal(line: str, answers: list[bytes], server: str) -> tuple[int, bytes]:
    """Run ``line`` with a terminal; type each answer after each prompt; return code, screen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BURNLINK_")}
    env["BURNLINK_SERVER"] = server
    master, slave = os.openpty()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-c", _ON_TERMINAL, line],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env=env,
    )
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            try:
                chunk = os.read(master, 4096) if ready else b""
            except OSError:  # EIO: the terminal's other side closed
                chunk = b""
            if not chunk:
                break
            screen += chunk
            if answers and screen.endswith(b": "):
                os.write(master, answers.pop(0))
        return process.wait(TIMEOUT), screen
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()


def test_prompts_read_the_terminal_while_the_secret_is_piped(server: str) -> None:
    burnlink = shlex.join(argv())
    shared_code, shared = _on_terminal(
        f"printf 'piped secret' | {burnlink} share --passphrase",
        [b"pass phrase\n", b"pass phrase\n"],
        server,
    )
    match = re.search(rb"http://\S+/s/\S+#\S+", shared)
    assert shared_code == 0, shared
    assert match is not None
    link = match[0].decode()

    got_code, got = _on_terminal(f"{burnlink} get {shlex.quote(link)}", [b"pass phrase\n"], server)

    assert got_code == 0, got
    assert b"piped secret\r\n" in got  # a newline is added on a terminal only
    assert b"pass phrase" not in shared + got  # never echoed
