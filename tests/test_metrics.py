"""Prometheus metrics: per-instance registries, bounded labels, the text exposition."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from burnlink.metrics import (
    CONTENT_TYPE,
    DeliveryResult,
    DeniedReason,
    Metrics,
    StoreName,
    WebhookFailure,
    render,
)
from burnlink.models import EndReason


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = render(metrics)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_metrics_start_with_every_series_at_zero() -> None:
    samples = _samples(Metrics())

    assert samples[("burnlink_secrets_created_total", ())] == 0
    for end in EndReason:
        assert samples[("burnlink_secrets_ended_total", (("reason", end.value),))] == 0
    for denied in DeniedReason:
        assert samples[("burnlink_access_denied_total", (("reason", denied.value),))] == 0
    for failure in WebhookFailure:
        assert samples[("burnlink_webhook_failures_total", (("reason", failure.value),))] == 0


def test_metrics_count_what_happened() -> None:
    metrics = Metrics()

    metrics.secret_created()
    metrics.secret_revealed(0.02)
    metrics.reveal_took(3.0)
    metrics.secret_ended(EndReason.EXPIRED, 3)
    metrics.secret_ended(EndReason.BURNED)
    metrics.secret_ended(EndReason.VIEWED, 0)
    metrics.denied(DeniedReason.PASSPHRASE)
    metrics.store_error(StoreName.AUDIT)
    metrics.webhook_failed(WebhookFailure.TIMEOUT)
    metrics.webhook_done(DeliveryResult.DELIVERED)
    metrics.alert()

    samples = _samples(metrics)
    assert samples[("burnlink_secrets_created_total", ())] == 1
    assert samples[("burnlink_secrets_revealed_total", ())] == 1
    assert samples[("burnlink_secrets_ended_total", (("reason", "expired"),))] == 3
    assert samples[("burnlink_secrets_ended_total", (("reason", "burned"),))] == 1
    assert samples[("burnlink_secrets_ended_total", (("reason", "viewed"),))] == 0
    assert samples[("burnlink_access_denied_total", (("reason", "passphrase"),))] == 1
    assert samples[("burnlink_store_errors_total", (("store", "audit"),))] == 1
    assert samples[("burnlink_webhook_failures_total", (("reason", "timeout"),))] == 1
    assert samples[("burnlink_webhook_deliveries_total", (("result", "delivered"),))] == 1
    assert samples[("burnlink_alerts_total", ())] == 1
    assert samples[("burnlink_reveal_duration_seconds_count", ())] == 2
    assert samples[("burnlink_reveal_duration_seconds_bucket", (("le", "0.025"),))] == 1


def test_metrics_instances_do_not_share_state() -> None:
    first, second = Metrics(), Metrics()

    first.secret_created()

    assert _samples(second)[("burnlink_secrets_created_total", ())] == 0


def test_metrics_refuse_label_values_outside_their_enum() -> None:
    with pytest.raises(ValueError, match="not a valid"):
        Metrics().denied("made-up")  # type: ignore[arg-type]


def test_render_gives_the_prometheus_text_format() -> None:
    body, content_type = render(Metrics())

    assert content_type == CONTENT_TYPE
    assert content_type.startswith("text/plain; version=0.0.4")
    assert b"# HELP burnlink_secrets_created_total Secrets stored." in body
