"""Counting instructions under valgrind's callgrind, for ``--instructions`` of the in-process
benchmarks (``bench.inproc``, ``bench.sealer``).

``rerun`` starts the same command again under callgrind with counting off; inside it,
``counted(name)`` turns counting on around one block (``callgrind_control``) and reads the
instructions it ran from the dump. The count is user space only (an ``fsync`` or a socket
write's kernel time is not in it) and moves by about 1 % between runs, whatever else the
machine does.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

_OUT_VARIABLE = "BURNLINK_BENCH_CALLGRIND_OUT"
_OUT = os.environ.get(_OUT_VARIABLE)

UNDER_CALLGRIND = _OUT is not None
"""Whether this process is the one ``rerun`` started."""


def rerun(module: str, argv: list[str]) -> None:
    """Run ``python -m module argv`` again under callgrind and exit with its status."""
    with tempfile.TemporaryDirectory(prefix="burnlink-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, "-m", module, *argv,
        ]  # fmt: skip
        env = {**os.environ, _OUT_VARIABLE: str(out)}
        errors = Path(tmp) / "stderr"
        with errors.open("w") as stderr:
            status = subprocess.run(command, env=env, stderr=stderr, check=False).returncode
        if status:
            lines = [line for line in errors.read_text().splitlines() if not line.startswith("==")]
            print("\n".join(lines[-15:]), file=sys.stderr)
        sys.exit(status)


@contextlib.contextmanager
def counted(name: str) -> Iterator[list[int]]:
    """Under ``rerun``: the instructions run inside the block, appended to the yielded list
    once it ends (nothing is counted otherwise, and the list stays empty)."""
    found: list[int] = []
    if _OUT is None:
        yield found
        return
    pid = str(os.getpid())
    subprocess.run(["callgrind_control", "--instr=on", pid], check=True, capture_output=True)
    try:
        yield found
    finally:
        subprocess.run(
            ["callgrind_control", f"--dump={name}", pid], check=True, capture_output=True
        )
        subprocess.run(["callgrind_control", "--instr=off", pid], check=True, capture_output=True)
        out = Path(_OUT)
        # Each dump is a file of its own; its ``totals`` are what ran since the last dump (its
        # ``summary`` line overflows when counting is toggled, so it is not read).
        for dump in out.parent.glob(out.name + ".*"):
            text = dump.read_text(errors="replace")
            if f"\ndesc: Trigger: dump {name}\n" in text:
                totals = next(line for line in text.splitlines() if line.startswith("totals:"))
                found.append(int(totals.split()[1]))
                dump.unlink()
