"""Cold start of ``burnlink share``, timed with hyperfine against a local server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench.contenders import REPO, VENV_BIN
from bench.procs import free_port, serving
from bench.stores import RATE_LIMITS_WIDE


def measure(work: Path, runs: int = 30) -> dict[str, dict[str, float]]:
    """Mean, standard deviation, min and max seconds of ``share``, ``--version`` and bare Python.

    The server is burnlink on SQLite with one worker; ``share`` encrypts locally and creates
    the secret over loopback, as a person's first command would.
    """
    out = work / "coldstart"
    out.mkdir(parents=True, exist_ok=True)
    secret = out / "secret.txt"
    secret.write_text("bench: correct horse battery staple\n")
    port = free_port()
    burnlink = VENV_BIN / "burnlink"
    command = [
        str(burnlink), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--store", f"sqlite://{out / 'share.db'}",
    ]  # fmt: skip
    report = out / "hyperfine.json"
    with serving(
        "share-server",
        command,
        port=port,
        ready_path="/healthz",
        log=out / "server.log",
        env=RATE_LIMITS_WIDE,
        cwd=REPO,
    ) as server:
        subprocess.run(
            [
                "hyperfine", "--warmup", "3", "--runs", str(runs), "--export-json", str(report),
                "--style", "basic",
                "-n", "burnlink share", f"{burnlink} share --server {server.base} < {secret}",
                "-n", "burnlink --version", f"{burnlink} --version",
                "-n", "python -c pass", f"{VENV_BIN / 'python'} -c pass",
            ],
            check=True,
            stdout=(out / "hyperfine.txt").open("w"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    results = json.loads(report.read_text())["results"]
    return {
        r["command"]: {k: round(float(r[k]), 4) for k in ("mean", "stddev", "min", "max", "median")}
        for r in results
    }
