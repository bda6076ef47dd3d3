"""The compliance report: ``burnlink audit report`` writes the figures of a period
(``audit.figures``) and the result of verifying the log as one HTML file an auditor can file,
and as PDF where a Chromium is installed to print it.

The HTML stands alone: no script, no external resource (a ``Content-Security-Policy`` meta
tag forbids both), its style inline, its chart an inline SVG drawn here. Every value from the
log goes through Jinja2's escaping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import jinja2

from burnlink import __version__
from burnlink.audit.chain import VerifyResult
from burnlink.audit.events import AuditEventType
from burnlink.audit.figures import CATEGORIES, RULES, Figures
from burnlink.errors import ConfigError

__all__ = ["CHROMIUM_NAMES", "Chart", "Integrity", "find_chromium", "print_pdf", "render_html"]

CHROMIUM_NAMES: Final = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
"""Programs ``find_chromium`` looks for on ``PATH`` (``BURNLINK_CHROMIUM`` names one
explicitly)."""
PDF_TIMEOUT: Final = 120.0
"""Seconds Chromium gets to print the report."""

_TEMPLATES: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("burnlink.audit", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_COLOURS: Final = {
    "created": "#2563eb",
    "viewed": "#16a34a",
    "expired": "#6b7280",
    "burned": "#ea580c",
    "denied": "#dc2626",
    "alerts": "#7c3aed",
}
_DASHES: Final = {"expired": "6 3", "burned": "2 3", "alerts": "8 3 2 3"}
"""Dashed lines for some series, so the chart reads without telling colours apart."""
_RULE_NAMES: Final = {
    "passphrase": "Passphrase",
    "recipients": "Bound to recipients (sign-in)",
    "require_mfa": "Second factor required of recipients",
    "emailed_code": "Emailed code",
    "network_or_country": "Address or country rules",
}


@dataclass(frozen=True)
class Integrity:
    """What verifying the log found, for the report's first section."""

    result: VerifyResult
    anchors: Sequence[str]
    """What the head was held against, in words (e.g. "checkpoint of seq 41 made at …")."""
    log_id: str
    """The audit key's id: which log this is."""


@dataclass(frozen=True)
class Series:
    """One line of the chart."""

    name: str
    colour: str
    dash: str | None
    points: str
    """SVG ``points``: x,y pairs."""
    dots: list[tuple[float, float, int]]
    """Each day's point and count (drawn as a dot with a tooltip when days are few)."""


@dataclass(frozen=True)
class Chart:
    """The activity chart's geometry: one line per category over the days of the period."""

    width: int
    height: int
    top: int
    left: int
    bottom: int
    maximum: int
    ticks: list[tuple[float, int]]
    """y and value of each horizontal grid line."""
    labels: list[tuple[float, str]]
    """x and text of each day label shown."""
    series: list[Series]

    @classmethod
    def of(cls, figures: Figures, *, width: int = 760, height: int = 260) -> Chart | None:
        """The chart of ``figures``' days, or ``None`` when no day has activity."""
        days = figures.days()
        if not days:
            return None
        top, left, bottom, right = 12, 48, 36, 12
        plot_w, plot_h = width - left - right, height - top - bottom
        maximum = max(1, *(max(counts.values()) for _, counts in days))
        step = plot_w / max(1, len(days) - 1)

        def x(i: int) -> float:
            return round(left + (i * step if len(days) > 1 else plot_w / 2), 1)

        def y(value: int) -> float:
            return round(top + plot_h - value * plot_h / maximum, 1)

        ticks = sorted({round(maximum * k / 4) for k in range(5)})
        every = max(1, len(days) // 8)
        labels = [
            (x(i), day.strftime("%m-%d")) for i, (day, _) in enumerate(days) if i % every == 0
        ]
        series = []
        for name in CATEGORIES:
            coords = [(x(i), y(counts[name]), counts[name]) for i, (_, counts) in enumerate(days)]
            series.append(
                Series(
                    name=name,
                    colour=_COLOURS[name],
                    dash=_DASHES.get(name),
                    points=" ".join(f"{cx},{cy}" for cx, cy, _ in coords),
                    dots=coords if len(days) <= 62 else [],
                )
            )
        return cls(
            width,
            height,
            top,
            left,
            top + plot_h,
            maximum,
            [(y(t), t) for t in ticks],
            labels,
            series,
        )


def render_html(figures: Figures, integrity: Integrity, *, generated: datetime) -> str:
    """The report as one self-contained HTML document."""
    totals = dict.fromkeys(CATEGORIES, 0)
    for _, counts in figures.days():
        for name, count in counts.items():
            totals[name] += count
    return _TEMPLATES.get_template("report.html").render(
        figures=figures,
        integrity=integrity,
        generated=generated,
        version=__version__,
        totals=totals,
        chart=Chart.of(figures),
        colours=_COLOURS,
        rules=[(_RULE_NAMES[rule], figures.with_rule[rule], figures.share(rule)) for rule in RULES],
        types=[(kind.value, figures.by_type[kind.value]) for kind in AuditEventType],
        median=_duration(figures.median_first_view),
    )


def _duration(seconds: float | None) -> str | None:
    """``seconds`` for people: ``42 s``, ``3 min 5 s``, ``2 h 10 min``, ``3 d 4 h``."""
    if seconds is None:
        return None
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def find_chromium() -> str | None:
    """The Chromium that prints PDFs: ``BURNLINK_CHROMIUM``, else the first of
    ``CHROMIUM_NAMES`` on ``PATH``."""
    named = os.environ.get("BURNLINK_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else shutil.which(named)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: str, out: Path, *, chromium: str | None = None) -> None:
    """Print ``html`` to ``out`` (mode 600) with headless Chromium.

    Raises ``ConfigError`` when no Chromium is found or it fails. The page has no script and
    no resource outside itself; Chromium runs with a profile of its own that is deleted
    afterwards. Its sandbox is switched off only when running as root, where Chromium refuses
    to start with it.
    """
    program = chromium or find_chromium()
    if program is None:
        raise ConfigError(
            "--pdf needs Chromium: install it (Debian: apt-get install chromium) or name it in"
            " BURNLINK_CHROMIUM; the HTML report needs nothing"
        )
    with tempfile.TemporaryDirectory(prefix="burnlink-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        printed = Path(tmp) / "report.pdf"
        command = [
            program,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={printed}",
            page.as_uri(),
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(1, "--no-sandbox")
        try:
            done = subprocess.run(  # noqa: S603 - a fixed program and arguments, no shell
                command, capture_output=True, timeout=PDF_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"Chromium ({program}) could not print the report: {exc}") from None
        if done.returncode != 0 or not printed.is_file() or printed.stat().st_size == 0:
            raise ConfigError(
                f"Chromium ({program}) could not print the report (exit {done.returncode})"
            )
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(printed.read_bytes())
