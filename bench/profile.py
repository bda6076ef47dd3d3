"""``--profile``: sample burnlink's workers with py-spy while wrk drives creates and reveals.

py-spy (bench/requirements.txt) records every process of the server's group
(``--subprocesses``) without pausing them (``--nonblocking``), and only threads that hold the
GIL (``--gil``): the shares are shares of the CPU time the workers spend running Python and
the C code it calls while holding the GIL (uvloop, httptools, the drivers' parsers), not of
wall time, and idle waits are left out. A sample whose innermost frame is the event loop
itself (``Runner.run``) is time in uvloop's C code: socket I/O, callbacks, HTTP parsing.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import load
from bench.contenders import VENV_BIN, Contender, reveal_lines, started
from bench.load import Load
from bench.procs import free_port

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# (component, start of the frame's file as py-spy shortens it), tried from the innermost
# frame outwards: a sample counts for the first component its stack reaches.
_COMPONENTS = [
    ("logging", "logging/"),
    ("json", "json/"),
    ("pydantic", "pydantic"),
    ("cryptography", "cryptography/"),
    ("redis-py", "redis/"),
    ("psycopg", "psycopg"),
    ("sqlite3", "sqlite3/"),
    ("burnlink store", "burnlink/store/"),
    ("burnlink web", "burnlink/web/"),
    ("burnlink service & rest", "burnlink/"),
    ("fastapi", "fastapi/"),
    ("starlette", "starlette/"),
    ("uvicorn http", "uvicorn/protocols/"),
    ("uvicorn", "uvicorn/"),
    ("anyio", "anyio/"),
    ("asyncio", "asyncio/"),
    ("threads", "threading.py"),
    ("threads", "concurrent/"),
    ("stdlib email/http", "email/"),
    ("stdlib email/http", "http/"),
    ("ipaddress", "ipaddress.py"),
]


@dataclass(frozen=True)
class Frame:
    func: str
    file: str


def _parse(raw: Path) -> list[tuple[list[Frame], int]]:
    stacks: list[tuple[list[Frame], int]] = []
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for part in stack.split(";"):
            match = _FRAME.match(part)
            if match:
                frames.append(Frame(match["func"], match["file"]))
        if frames:
            stacks.append((frames, int(count)))
    return stacks


def _component(frames: list[Frame]) -> str:
    for frame in reversed(frames):
        for name, marker in _COMPONENTS:
            if frame.file.startswith(marker):
                return name
    return "other"


def summarise(raw: Path, top: int = 15) -> dict[str, object]:
    """Self time by component and by function, and inclusive time of burnlink's functions."""
    stacks = _parse(raw)
    total = sum(count for _, count in stacks) or 1
    components: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        components[_component(frames)] += count
        leaf = frames[-1]
        leaves[f"{leaf.func} ({leaf.file})"] += count
        seen = {
            f"{f.func} ({f.file})"
            for f in frames
            if f.file.startswith(("burnlink/", "logging/", "pydantic", "json/"))
        }
        for name in seen:
            inclusive[name] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "self_by_component": shares(components),
        "self_by_function": shares(leaves),
        "inclusive": shares(inclusive),
    }


def _record(pgid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(VENV_BIN / "py-spy"), "record", "--pid", str(pgid), "--subprocesses",
            "--nonblocking", "--gil", "--rate", "200", "--duration", str(int(seconds)),
            "--format", "raw", "--output", str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def profile(contender: Contender, settings: Load, work: Path) -> dict[str, dict[str, object]]:
    """Profile ``contender`` under a create run and a reveal run; return both summaries."""
    out = work / f"profile-{contender.name}"
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    summaries: dict[str, dict[str, object]] = {}
    with started(contender, port, out) as server:
        load.fixed(
            server.base, contender.create, settings, out / "warmup.txt", duration=settings.warmup
        )
        spy = _record(server.pgid, settings.duration, out / "create.raw")
        created = load.fixed(server.base, contender.create, settings, out / "create.txt")
        spy.wait()
        lines = reveal_lines(server, contender, settings, out, created.rps)
        spy = _record(server.pgid, settings.duration, out / "reveal.raw")
        load.replay(server.base, lines, contender.reveal_type, settings, out, out / "reveal.txt")
        spy.wait()
    for phase in ("create", "reveal"):
        raw = out / f"{phase}.raw"
        if raw.exists():
            summaries[phase] = summarise(raw)
            _write(out / f"{phase}-summary.txt", contender.name, phase, summaries[phase])
    return summaries


def _write(path: Path, name: str, phase: str, summary: dict[str, object]) -> None:
    lines = [f"{name}, {phase}: {summary['samples']} samples"]
    for title in ("self_by_component", "self_by_function", "inclusive"):
        lines.append(f"\n{title.replace('_', ' ')}:")
        rows = summary[title]
        if not isinstance(rows, list):
            continue
        lines.extend(f"  {share:5.1f}%  {what}" for what, share in rows)
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
