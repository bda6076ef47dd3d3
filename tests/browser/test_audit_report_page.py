"""The compliance report (``burnlink audit report``) as an auditor opens it, in real Chromium:
the chart drawn, nothing fetched, no script run, accessible; a screenshot goes to
test-artifacts/screenshots/audit-report.png."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.browser.conftest import ARTIFACTS, Contexts, axe_violations
from tests.cli.test_audit import burnlink
from tests.cli.test_audit_report import _known_log


def test_the_report_opens_with_its_chart_and_nothing_else(
    contexts: Contexts, tmp_path: Path
) -> None:
    url = f"sqlite://{tmp_path / 'audit.db'}"
    report = tmp_path / "report.html"

    def write_report() -> int:
        _known_log(url)
        return burnlink("audit", "report", "--store", url, "-o", str(report)).exit_code

    # In a thread of its own: Playwright's sync API holds this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(write_report).result() == 0
    page, log = contexts.page(viewport={"width": 900, "height": 900})

    page.goto(report.as_uri())

    assert [r.url for r in log.requests] == [report.as_uri()]  # nothing else fetched
    heights = page.locator("polyline.series").evaluate_all(
        "lines => lines.map(line => [line.dataset.series, line.getBBox().height])"
    )
    assert {name for name, height in heights if height > 0} == {
        "created", "viewed", "expired", "burned", "denied", "alerts"
    }  # fmt: skip
    assert page.text_content("#chart-title") == "Events per day, by kind"
    assert "Verified" in (page.text_content(".verdict") or "")
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "audit-report.png"), full_page=True)
    assert axe_violations(page) == [], "axe-core found violations in the report"
