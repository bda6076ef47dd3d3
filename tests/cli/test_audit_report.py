"""``burnlink audit report`` on real SQLite and PostgreSQL logs: the figures of a known log,
the period, the HTML an auditor files (self-contained, escaped), verification against a
checkpoint, tampering, and the PDF printed by a real Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from burnlink.audit import open_audit_store
from burnlink.audit.events import AuditEventType, RequestInfo, audit_event
from burnlink.cli.output import ExitCode
from tests.audit.conftest import KEY, T0, Raw
from tests.cli.test_audit import _checkpoint_of, _wipe_and_restart, burnlink

REQUEST = RequestInfo("203.0.113.7", "DE", "curl/8.5.0", "req")
HOSTILE = '<img src=x onerror=alert(1)>"'


def _known_log(url: str) -> None:
    """Three days of activity whose figures are worked out by hand in the tests below.

    Day 0 (2030-01-01): secrets a (passphrase, viewed after 60 s, viewed again), b (bound to
    ``group:ops`` with MFA by a signed-in alice of the teams ops and security; viewed after
    120 s, then a refused identity), c (address rule; expired); a wrong passphrase.
    Day 1: nothing. Day 2: d (emailed code; burned), e (locked), f (viewed after 600 s), an
    alert with a hostile reason, a rate limit refusal and a sign-in.
    """
    day0, day2 = T0, T0 + timedelta(days=2)
    T = AuditEventType
    events = [
        audit_event(T.SECRET_CREATED, at=day0, secret_id="secret-a-xxxxxxxxxxxxxx",
                    request=REQUEST, detail={"ttl": 3600, "protected": True}),
        audit_event(T.SECRET_CREATED, at=day0 + timedelta(minutes=1),
                    secret_id="secret-b-xxxxxxxxxxxxxx", request=REQUEST,
                    policy={"recipients": "group:ops", "require_mfa": True},
                    detail={"ttl": 3600, "protected": False, "teams": '["ops","security"]'},
                    actor=("alice-sub", "alice@example.com")),
        audit_event(T.SECRET_CREATED, at=day0 + timedelta(minutes=2),
                    secret_id="secret-c-xxxxxxxxxxxxxx", request=REQUEST,
                    policy={"allowed_ips": "10.0.0.0/8"}, detail={"ttl": 60}),
        audit_event(T.SECRET_VIEWED, at=day0 + timedelta(seconds=60),
                    secret_id="secret-a-xxxxxxxxxxxxxx", request=REQUEST),
        audit_event(T.PASSPHRASE_FAILED, at=day0 + timedelta(minutes=2, seconds=5),
                    secret_id="secret-a-xxxxxxxxxxxxxx", request=REQUEST),
        audit_event(T.SECRET_VIEWED, at=day0 + timedelta(minutes=3),
                    secret_id="secret-b-xxxxxxxxxxxxxx", request=REQUEST),
        audit_event(T.ACCESS_DENIED_IDENTITY, at=day0 + timedelta(minutes=4),
                    secret_id="secret-b-xxxxxxxxxxxxxx", request=REQUEST),
        audit_event(T.SECRET_VIEWED, at=day0 + timedelta(minutes=5),
                    secret_id="secret-a-xxxxxxxxxxxxxx", request=REQUEST),  # a second view
        audit_event(T.SECRET_EXPIRED, at=day0 + timedelta(minutes=6),
                    secret_id="secret-c-xxxxxxxxxxxxxx"),
        audit_event(T.SECRET_CREATED, at=day2, secret_id="secret-d-xxxxxxxxxxxxxx",
                    request=REQUEST, policy={"recipient": "b***@example.com"}, detail={"ttl": 60}),
        audit_event(T.SECRET_BURNED, at=day2 + timedelta(minutes=1),
                    secret_id="secret-d-xxxxxxxxxxxxxx", request=REQUEST),
        audit_event(T.SECRET_CREATED, at=day2 + timedelta(minutes=2),
                    secret_id="secret-e-xxxxxxxxxxxxxx", request=REQUEST, detail={"ttl": 60}),
        audit_event(T.SECRET_LOCKED, at=day2 + timedelta(minutes=3),
                    secret_id="secret-e-xxxxxxxxxxxxxx", request=REQUEST),
        audit_event(T.SECRET_CREATED, at=day2 + timedelta(minutes=4),
                    secret_id="secret-f-xxxxxxxxxxxxxx", request=REQUEST, detail={"ttl": 3600}),
        audit_event(T.SECRET_VIEWED, at=day2 + timedelta(minutes=14),
                    secret_id="secret-f-xxxxxxxxxxxxxx", request=REQUEST),
        audit_event(T.ALERT, at=day2 + timedelta(minutes=15), detail={"reason": HOSTILE}),
        audit_event(T.RATE_LIMITED, at=day2 + timedelta(minutes=16), request=REQUEST),
        audit_event(T.SIGNED_IN, at=day2 + timedelta(minutes=17), request=REQUEST,
                    actor=("alice-sub", "alice@example.com")),
    ]  # fmt: skip

    async def fill() -> None:
        store = await open_audit_store(url, key=KEY)
        for event in events:
            await store.append(event)
        await store.aclose()

    asyncio.run(fill())


@pytest.fixture(params=["sqlite", "postgres"])
def known_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("pg_audit_url")
    _known_log(url)
    return url


def _figures(url: str, *args: str) -> dict[str, object]:
    result = burnlink("audit", "report", "--store", url, "--json", *args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert isinstance(figures, dict)
    return figures


def test_the_report_counts_a_known_log(known_url: str) -> None:
    figures = _figures(known_url)

    assert figures["verified"] == {
        "ok": True,
        "checked": 18,
        "last_seq": 18,
        "problem": None,
        "seq": None,
        "detail": "",
        "anchors": [],
        "log": figures["verified"]["log"],  # type: ignore[index]
    }
    assert (figures["entries"], figures["first_seq"], figures["last_seq"]) == (18, 1, 18)
    assert figures["by_day"] == [
        {"day": "2030-01-01", "created": 3, "viewed": 3, "expired": 1, "burned": 0,
         "denied": 2, "alerts": 0},
        {"day": "2030-01-02", "created": 0, "viewed": 0, "expired": 0, "burned": 0,
         "denied": 0, "alerts": 0},
        {"day": "2030-01-03", "created": 3, "viewed": 1, "expired": 0, "burned": 2,
         "denied": 1, "alerts": 1},
    ]  # fmt: skip
    assert figures["created"] == 6
    assert figures["signed_in_creates"] == 1
    assert figures["shares"] == {
        "passphrase": 1 / 6,
        "recipients": 1 / 6,
        "require_mfa": 1 / 6,
        "emailed_code": 1 / 6,
        "network_or_country": 1 / 6,
    }
    # First views only: a after 60 s, b after 120 s, f after 600 s (a's second view is not one).
    assert (figures["median_first_view_seconds"], figures["first_views"]) == (120.0, 3)
    assert figures["denials"] == {
        "access.denied_ip": 0,
        "access.denied_geo": 0,
        "access.denied_identity": 1,
        "passphrase.failed": 1,
        "key.failed": 0,
        "otp.failed": 0,
        "rate.limited": 1,
        "admin.denied": 0,
        "user.sign_in_refused": 0,
    }
    assert (figures["alerts"], figures["alerts_by_reason"]) == (1, {HOSTILE: 1})
    # b's creation, view and refused identity count for each of alice's teams.
    b_counts = {"created": 1, "viewed": 1, "expired": 0, "burned": 0, "denied": 1, "alerts": 0}
    assert figures["by_team"] == {"ops": b_counts, "security": b_counts}
    by_type = figures["by_type"]
    assert isinstance(by_type, dict)
    assert by_type["user.signed_in"] == 1
    assert sum(by_type.values()) == 18


def test_the_report_counts_only_its_period(known_url: str) -> None:
    # From b's creation up to (not including) f's view: a's creation and f's view are out,
    # so a's first view pairs with nothing, and neither does f's.
    figures = _figures(
        known_url, "--since", "2030-01-01T00:01:00Z", "--until", "2030-01-03T00:14:00Z"
    )

    assert figures["since"] == "2030-01-01T00:01:00+00:00"
    assert figures["until"] == "2030-01-03T00:14:00+00:00"
    assert (figures["entries"], figures["first_seq"], figures["last_seq"]) == (13, 2, 14)
    assert figures["created"] == 5
    assert (figures["median_first_view_seconds"], figures["first_views"]) == (120.0, 1)


def test_an_empty_period_says_so(known_url: str, tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    result = burnlink(
        "audit", "report", "--store", known_url, "--since", "2031-01-01", "-o", str(out)
    )

    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "Verified" in html
    assert "nothing was refused or alerted, in this period" in html
    assert "No secret was both created and viewed in the period." in html


def test_the_html_report_stands_alone_and_escapes_what_the_log_holds(
    known_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = burnlink("audit", "report", "--store", known_url, "--output", str(out))

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    html = out.read_text()
    assert "default-src 'none'" in html  # the CSP meta tag: no script, nothing fetched
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&#34;" in html
    assert "Verified" in html
    assert "18 entries checked" in html
    assert "Median time from creation to first view: <strong>2 min 0 s</strong>" in html
    assert '<h2 id="teams">Per team</h2>' in html
    assert re.search(r"<td>ops</td>(<td class=\"n\">\d+</td>){6}", html)
    # One line per activity kind in the chart, each through its three days.
    lines = re.findall(r'<polyline class="series" data-series="(\w+)"[^>]* points="([^"]+)"', html)
    assert [name for name, _ in lines] == [
        "created", "viewed", "expired", "burned", "denied", "alerts"
    ]  # fmt: skip
    assert all(len(points.split()) == 3 for _, points in lines)


def test_a_report_of_a_tampered_log_says_so_first_and_exits_as_verify_does(
    known_url: str, tmp_path: Path
) -> None:
    Raw("sqlite" if known_url.startswith("sqlite") else "postgres", known_url).execute(
        "DELETE FROM {log} WHERE seq = 5"
    )
    out = tmp_path / "report.html"

    result = burnlink("audit", "report", "--store", known_url, "-o", str(out))
    as_json = burnlink("audit", "report", "--store", known_url, "--json")

    assert result.exit_code == ExitCode.INTEGRITY
    html = out.read_text()
    assert "Verification FAILED: FAILED at seq 5: missing" in html
    assert html.index("Verification FAILED") < html.index("Activity")
    assert as_json.exit_code == ExitCode.INTEGRITY
    assert json.loads(as_json.stdout)["verified"]["problem"] == "missing"


def test_the_report_holds_the_log_against_its_checkpoint(known_url: str, tmp_path: Path) -> None:
    checkpoint, keys, _ = _checkpoint_of(known_url, tmp_path)
    held = ["--checkpoint", str(checkpoint), "--key", str(keys)]

    intact = _figures(known_url, *held)
    _wipe_and_restart(known_url, appended=2)
    out = tmp_path / "report.html"
    caught = burnlink("audit", "report", "--store", known_url, *held, "-o", str(out))
    plain = burnlink("audit", "report", "--store", known_url, "--json")

    verified = intact["verified"]
    assert isinstance(verified, dict)
    assert verified["ok"] is True
    assert verified["anchors"] == [
        f"checkpoint of seq 18 made at 2030-01-01T01:00:00+00:00 ({checkpoint})"
    ]
    assert caught.exit_code == ExitCode.AUDIT_BEHIND_ANCHOR
    assert "Verification FAILED" in out.read_text()
    assert "the checkpoint records seq 18" in out.read_text()
    # Without the checkpoint, the wiped log verifies on its own, and the report says what
    # that does not prove.
    assert plain.exit_code == 0
    assert json.loads(plain.stdout)["verified"]["anchors"] == []


def test_the_configured_checkpoint_file_is_used_and_a_missing_one_refused(
    known_url: str, tmp_path: Path
) -> None:
    checkpoint, keys, _ = _checkpoint_of(known_url, tmp_path)
    _wipe_and_restart(known_url, appended=2)

    configured = burnlink(
        "audit", "report", "--store", known_url, "--key", str(keys), "--json",
        env={"BURNLINK_AUDIT_CHECKPOINT_FILE": str(checkpoint)},
    )  # fmt: skip
    missing = burnlink(
        "audit", "report", "--store", known_url, "--json",
        env={"BURNLINK_AUDIT_CHECKPOINT_FILE": str(tmp_path / "gone.json")},
    )  # fmt: skip

    assert configured.exit_code == ExitCode.AUDIT_BEHIND_ANCHOR
    assert missing.exit_code == ExitCode.CONFIG
    assert "gone.json" in json.loads(missing.stderr)["error"]["message"]


def test_a_period_that_ends_before_it_starts_is_refused(known_url: str) -> None:
    result = burnlink(
        "audit", "report", "--store", known_url, "--since", "2030-02-01", "--until", "2030-01-01"
    )

    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "--until" in result.stderr


CHROMIUM = os.environ.get("BURNLINK_TEST_CHROMIUM", "/usr/bin/chromium")


def test_the_report_prints_to_pdf_with_chromium(tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing (apt-get install chromium; bash scripts/test does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    url = f"sqlite://{tmp_path / 'audit.db'}"
    _known_log(url)
    pdf, html = tmp_path / "report.pdf", tmp_path / "report.html"

    result = burnlink(
        "audit", "report", "--store", url, "-o", str(html), "--pdf", str(pdf),
        env={"BURNLINK_CHROMIUM": CHROMIUM},
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert pdf.stat().st_size > 10_000
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600
    assert html.is_file()


def test_without_chromium_the_pdf_is_refused_with_the_html_written(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'audit.db'}"
    _known_log(url)
    pdf, html = tmp_path / "report.pdf", tmp_path / "report.html"

    result = burnlink(
        "audit", "report", "--store", url, "-o", str(html), "--pdf", str(pdf),
        env={"BURNLINK_CHROMIUM": str(tmp_path / "no-such-chromium"), "PATH": str(tmp_path)},
    )  # fmt: skip

    assert result.exit_code == ExitCode.CONFIG
    assert "needs Chromium" in result.stderr
    assert html.is_file()
    assert not pdf.exists()
