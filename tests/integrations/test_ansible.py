"""The burnlink.burnlink collection in a real ``ansible-playbook`` run against a real server:
the module shares a variable and a file, the lookup reads them back into facts, and neither
a value nor a link reaches the play's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from burnlink import Client
from tests.cli.harness import running_server, server_settings
from tests.integrations.runner import ROOT

SECRET = "ansible-var-secret-7Hq2"
FILE_SECRET = b"ansible-file-secret-Zx9\n"
PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Share a variable
      burnlink.burnlink.share:
        server: "{{ server }}"
        content: "{{ app_secret }}"
        ttl: 600
        views: 2
      register: shared
      no_log: true
    - name: Share a file
      burnlink.burnlink.share:
        server: "{{ server }}"
        path: "{{ workdir }}/key.pem"
      register: shared_file
      no_log: true
    - name: Read the variable back
      ansible.builtin.set_fact:
        received: "{{ lookup('burnlink.burnlink.secret', shared.link) }}"
        received_file: "{{ lookup('burnlink.burnlink.secret', shared_file.link) }}"
      no_log: true
    - name: Keep what the test checks
      ansible.builtin.copy:
        content: "{{ {'received': received, 'received_file': received_file,
                      'manage': shared.manage_link} | to_json }}"
        dest: "{{ workdir }}/result.json"
        mode: "0600"
      no_log: true
"""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server(server_settings()) as base:
        yield base


def lay_out_collection(tmp: Path) -> Path:
    """An Ansible collections path in ``tmp`` holding this checkout's collection."""
    namespace = tmp / "collections" / "ansible_collections" / "burnlink"
    namespace.mkdir(parents=True, exist_ok=True)
    link = namespace / "burnlink"
    if not link.exists():
        link.symlink_to(ROOT / "integrations" / "ansible")
    return tmp / "collections"


def playbook(
    tmp: Path, text: str, extra: dict[str, str], verbosity: str = "-v"
) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook`` on localhost with the collection from this checkout."""
    lay_out_collection(tmp)
    (tmp / "play.yml").write_text(text, encoding="utf-8")
    (tmp / "vars.json").write_text(json.dumps(extra), encoding="utf-8")
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "ANSIBLE_COLLECTIONS_PATH": str(tmp / "collections"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "0",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        *("-i", "localhost,", "-c", "local", verbosity),
        *("-e", f"@{tmp / 'vars.json'}"),
        str(tmp / "play.yml"),
    ]
    return subprocess.run(  # noqa: S603 - fixed argv
        command, env=environment, cwd=tmp, capture_output=True, text=True, timeout=180, check=False
    )


def test_share_and_lookup_round_trip_with_nothing_in_the_output(
    server: str, tmp_path: Path
) -> None:
    (tmp_path / "key.pem").write_bytes(FILE_SECRET)

    run = playbook(
        tmp_path,
        PLAYBOOK,
        {"server": server, "app_secret": SECRET, "workdir": str(tmp_path)},
        "-vvv",
    )

    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    result = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert result["received"] == SECRET
    assert result["received_file"] == FILE_SECRET.decode()
    assert SECRET not in output
    assert "ansible-file-secret" not in output
    assert f"{server}/s/" not in output
    assert f"{server}/m/" not in output
    assert "censored" in output
    with Client() as client:
        receipt = client.status(result["manage"])
    assert (receipt.views_used, receipt.views_left) == (1, 1)


def test_the_modules_value_arguments_are_never_logged_even_without_no_log(
    server: str, tmp_path: Path
) -> None:
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - burnlink.burnlink.share:
        server: "{{ server }}"
        content: "{{ app_secret }}"
        passphrase: "{{ app_secret }}-pass"
"""
    run = playbook(tmp_path, play, {"server": server, "app_secret": SECRET}, "-vvv")

    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert SECRET not in output
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output


def test_a_used_link_fails_the_play_without_showing_it(server: str, tmp_path: Path) -> None:
    with Client(server) as client:
        link = client.share("once").url
        client.get(link)
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        value: "{{ lookup('burnlink.burnlink.secret', link) }}"
      no_log: true
"""
    run = playbook(tmp_path, play, {"link": link})

    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert link.partition("#")[2] not in output
    assert "censored" in output


@pytest.mark.parametrize(
    ("kind", "name"),
    [("lookup", "burnlink.burnlink.secret"), ("module", "burnlink.burnlink.share")],
)
def test_ansible_doc_reads_the_plugins_documentation(tmp_path: Path, kind: str, name: str) -> None:
    collections = lay_out_collection(tmp_path)
    done = subprocess.run(  # noqa: S603 - fixed argv
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", kind, name],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_NOCOLOR": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "end-to-end" in done.stdout or "SDK" in done.stdout
