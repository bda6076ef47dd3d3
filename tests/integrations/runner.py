"""What a CI runner gives a step: its environment, the command files it reads back, and the
workflow commands it takes from a step's output. Enough of GitHub Actions and GitLab CI to run
burnlink's CI scripts as they would run there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "burnlink")
"""The CLI of the environment the tests run in (the runner's installed burnlink)."""
_EXPRESSION = re.compile(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}")


@dataclass(frozen=True)
class Step:
    """A finished step: its exit status, what it printed, and what it wrote for the runner."""

    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    env: dict[str, str]

    def masks(self) -> list[str]:
        """The values of the ``::add-mask::`` commands, unescaped as the runner does."""
        return [
            unescape(line.removeprefix("::add-mask::"))
            for line in self.stdout.splitlines()
            if line.startswith("::add-mask::")
        ]

    def printed_outside_masks(self) -> str:
        """Everything the log would show: stdout without the mask commands, and stderr."""
        kept = [line for line in self.stdout.splitlines() if not line.startswith("::add-mask::")]
        return "\n".join(kept) + "\n" + self.stderr


def unescape(data: str) -> str:
    """A workflow command's data as the runner reads it."""
    return data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def base_environment(tmp: Path) -> dict[str, str]:
    """A clean environment: no BURNLINK_* of the developer's, and no kept API tokens."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "CI": "true",
    }


def read_outputs(path: Path) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` / ``$GITHUB_ENV``: ``name=value`` lines and ``name<<DELIM`` blocks."""
    values: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").split("\n")) if path.exists() else iter([])
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body: list[str] = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            else:
                raise AssertionError(f"{name}: no closing delimiter")
            values[name] = "\n".join(body)
        elif line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


def run_github_action(inputs: dict[str, str], tmp: Path) -> Step:
    """Run the action's burnlink step as the runner would: its ``env`` from ``action.yml``
    with these inputs (others at their defaults), the command files, the action's path."""
    action_dir = ROOT / "integrations" / "github-action"
    action = yaml.safe_load((action_dir / "action.yml").read_text(encoding="utf-8"))
    unknown = set(inputs) - set(action["inputs"])
    assert not unknown, f"not inputs of action.yml: {unknown}"
    values = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    values.update(inputs)
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "burnlink")
    env = {
        name: _EXPRESSION.sub(lambda m: values[m[1]], str(template))
        for name, template in step["env"].items()
    }
    output, github_env = tmp / "github_output", tmp / "github_env"
    output.unlink(missing_ok=True)
    github_env.unlink(missing_ok=True)
    environment = {
        **base_environment(tmp),
        **env,
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_ENV": str(github_env),
        "GITHUB_ACTION_PATH": str(action_dir),
        "RUNNER_TEMP": str(tmp),
        "BURNLINK_CLI": CLI,  # as the install step leaves it in $GITHUB_ENV
    }
    command = step["run"].replace("$GITHUB_ACTION_PATH", str(action_dir))
    done = subprocess.run(  # noqa: S603 - the step's own command
        ["bash", "-c", command],  # noqa: S607 - bash from PATH, as the runner finds it
        env=environment,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Step(
        done.returncode, done.stdout, done.stderr, read_outputs(output), read_outputs(github_env)
    )


def run_gitlab_job(script: list[str], env: dict[str, str], tmp: Path, shell: str = "bash") -> Step:
    """Run a job extending ``.burnlink`` from the GitLab template: its ``before_script`` then
    ``script``, in one shell as the runner does (bash with ``-eo pipefail``, or POSIX sh with
    ``-e``), with the variables GitLab sets; ``env`` shows what the job's shell exported."""
    template = yaml.safe_load(
        (ROOT / "integrations" / "gitlab" / "burnlink.gitlab-ci.yml").read_text(encoding="utf-8")
    )
    job = template[".burnlink"]
    dump = tmp / "exported"
    lines = [*job["before_script"], *script, f"env -0 > {dump}"]
    environment = {
        **base_environment(tmp),
        **{name: str(value) for name, value in job["variables"].items()},
        "GITLAB_CI": "true",
        "CI_JOB_ID": "1",
        "CI_PROJECT_DIR": str(tmp),
        "BURNLINK_CLI": CLI,  # installed: the template's pip install is skipped
        **env,
    }
    flags = ["-eo", "pipefail"] if shell == "bash" else ["-e"]
    dump.unlink(missing_ok=True)
    done = subprocess.run(  # noqa: S603 - the template's own script
        [shell, *flags, "-c", "\n".join(lines)],
        env=environment,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    exported: dict[str, str] = {}
    if dump.exists():
        for entry in dump.read_text(encoding="utf-8").split("\0"):
            if "=" in entry:
                name, value = entry.split("=", 1)
                if environment.get(name) != value:
                    exported[name] = value
    return Step(done.returncode, done.stdout, done.stderr, {}, exported)
