"""Parsing rate limits, keying clients, and the limiter's rules: which counters an action
hits, when a count refuses, what failures lock, and what ``unlock`` clears."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from burnlink.config import Limit
from burnlink.errors import RateLimited
from burnlink.service.rate_limits import LimitCheck, RateLimiter, client_key
from burnlink.store import Hit
from burnlink.store.memory import MemoryStore


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("10/minute", Limit(10, 60)),
        ("1/second", Limit(1, 1)),
        (" 5 / hours ", Limit(5, 3600)),
        ("100/DAY", Limit(100, 86400)),
        ("30/10 minutes", Limit(30, 600)),
        ("30/10minutes", Limit(30, 600)),
        ("3/7 days", Limit(3, 7 * 86400)),
        ("off", None),
    ],
)
def test_limit_parse(text: str, limit: Limit | None) -> None:
    assert Limit.parse(text) == limit


@pytest.mark.parametrize("text", ["10", "0/minute", "ten/minute", "10/fortnight", "-1/hour", ""])
def test_limit_parse_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="10/minute"):
        Limit.parse(text)


@pytest.mark.parametrize("text", ["1/0 minutes", "1/8 days", "1/169 hours"])
def test_limit_parse_refuses_windows_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        Limit.parse(text)


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        (None, "unknown"),
    ],
)
def test_client_key_groups_an_ipv6_host_by_its_64(ip: str | None, key: str) -> None:
    assert client_key(ip) == key


# -- the limiter itself, on the memory store with a frozen clock (milliseconds per test) --------

MINUTE = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)  # the start of a minute, of an hour and of a day
IP = "203.0.113.9"
OTHER = "203.0.113.10"
SECRET = "A" * 22
WHY_FAILURES = (
    "Too many failed attempts from your network (wrong or used links, passphrases, codes or"
    " sign-ins)"
)
WHY_SECRET = "Too many failed attempts on this link from your network"
WHY_ADMIN = "Too many wrong admin tokens from your network"
FAILURES, SECRET_FAILURES, ADMIN_FAILURES = Limit(3, 3600), Limit(2, 86400), Limit(2, 600)


def limiter(
    failures: Limit | None = FAILURES,
    secret_failures: Limit | None = SECRET_FAILURES,
    admin_failures: Limit | None = ADMIN_FAILURES,
) -> RateLimiter:
    return RateLimiter(
        MemoryStore(retention=timedelta(days=1)), failures, secret_failures, admin_failures
    )


async def count(limits: RateLimiter, bucket: str, window: int, now: datetime = MINUTE) -> int:
    """What the store holds in ``bucket`` now (read, not counted)."""
    return await limits.store.hit(bucket, window=window, now=now, cost=0)


def test_checks_name_the_counters_a_reveal_hits() -> None:
    limits = limiter()
    checks = limits.checks("reveal", Limit(5, 60), IP, failures=True, secret_id=SECRET)

    assert checks == [
        LimitCheck("secret_failures", Limit(2, 86400), Hit(f"failed:{IP}:{SECRET}", 86400, 0)),
        LimitCheck("failures", Limit(3, 3600), Hit(f"failed:{IP}", 3600, 0)),
        LimitCheck("reveal", Limit(5, 60), Hit(f"reveal:{IP}", 60, 1)),
    ]


def test_checks_leave_out_what_does_not_apply() -> None:
    # Without ``failures`` (creates, code mails) no failure count blocks the action.
    assert limiter().checks("create", Limit(5, 60), IP, secret_id=SECRET) == [
        LimitCheck("create", Limit(5, 60), Hit(f"create:{IP}", 60, 1))
    ]
    # Without a secret, only the client-wide failure count; without a limit, no own counter.
    assert limiter().checks("reveal", None, IP, failures=True) == [
        LimitCheck("failures", Limit(3, 3600), Hit(f"failed:{IP}", 3600, 0))
    ]
    # A failure limit that is off is not read.
    assert limiter(failures=None).checks("reveal", None, IP, failures=True, secret_id=SECRET) == [
        LimitCheck("secret_failures", Limit(2, 86400), Hit(f"failed:{IP}:{SECRET}", 86400, 0))
    ]
    assert limiter(secret_failures=None).checks("reveal", None, IP, failures=True) == [
        LimitCheck("failures", Limit(3, 3600), Hit(f"failed:{IP}", 3600, 0))
    ]
    assert limiter(None, None).checks("reveal", None, IP, failures=True, secret_id=SECRET) == []


def test_rule_names_the_failure_limits_else_the_one_given() -> None:
    limits = limiter()
    assert limits.rule("failures") == Limit(3, 3600)
    assert limits.rule("secret_failures") == Limit(2, 86400)
    assert limits.rule("admin") == Limit(2, 600)
    assert limits.rule("create", Limit(9, 60)) == Limit(9, 60)
    assert limits.rule("reveal") is None


def test_judge_lets_a_counted_action_reach_its_limit_and_refuses_the_next() -> None:
    check = LimitCheck("create", Limit(3, 60), Hit(f"create:{IP}", 60, 1))
    RateLimiter.judge([check], [3], now=MINUTE)
    with pytest.raises(RateLimited) as refused:
        RateLimiter.judge([check], [4], now=MINUTE)
    assert refused.value.limit == "create"
    assert refused.value.retry_after == 60
    assert str(refused.value) == "Too many requests. Try again in 60 seconds."


def test_judge_refuses_a_read_count_at_its_limit() -> None:
    # A failure count is only read: at the limit, the request it guards would pass it.
    check = LimitCheck("failures", Limit(3, 3600), Hit(f"failed:{IP}", 3600, 0))
    RateLimiter.judge([check], [2], now=MINUTE)
    with pytest.raises(RateLimited) as refused:
        RateLimiter.judge([check], [3], now=MINUTE + timedelta(minutes=10))
    assert refused.value.limit == "failures"
    assert refused.value.retry_after == 3000
    assert str(refused.value) == f"{WHY_FAILURES}; try again in 50 minutes."


def test_judge_refuses_the_first_check_over_its_limit() -> None:
    limits = limiter()
    checks = limits.checks("reveal", Limit(5, 60), IP, failures=True, secret_id=SECRET)
    limits.judge(checks, [1, 2, 5], now=MINUTE)
    for counts, name, why in [
        ([2, 3, 6], "secret_failures", WHY_SECRET),
        ([0, 3, 6], "failures", WHY_FAILURES),
        ([0, 0, 6], "reveal", ""),
    ]:
        with pytest.raises(RateLimited) as refused:
            limits.judge(checks, counts, now=MINUTE)
        assert refused.value.limit == name
        assert str(refused.value).startswith(why or "Too many requests.")
    with pytest.raises(ValueError, match="shorter"):
        limits.judge(checks, [0, 0], now=MINUTE)  # a store that answered too few counts


@pytest.mark.parametrize(
    ("window", "into", "retry_after"),
    [(60, 0, 60), (60, 0.5, 60), (60, 59.5, 1), (60, 59.999, 1), (3600, 90, 3510)],
)
def test_retry_after_is_the_rest_of_the_window_rounded_up(
    window: int, into: float, retry_after: int
) -> None:
    check = LimitCheck("create", Limit(1, window), Hit(f"create:{IP}", window, 1))
    with pytest.raises(RateLimited) as refused:
        RateLimiter.judge([check], [2], now=MINUTE + timedelta(seconds=into))
    assert refused.value.retry_after == retry_after


@pytest.mark.anyio
async def test_check_counts_each_request_and_refuses_past_the_limit() -> None:
    limits = limiter()
    for _ in range(2):
        await limits.check("create", Limit(2, 60), IP, now=MINUTE)
    with pytest.raises(RateLimited):
        await limits.check("create", Limit(2, 60), IP, now=MINUTE)
    assert await count(limits, f"create:{IP}", 60) == 3  # a refused request counts too
    await limits.check("create", Limit(2, 60), OTHER, now=MINUTE)  # another client is apart
    await limits.check("create", Limit(2, 60), IP, now=MINUTE + timedelta(seconds=60))
    await limits.check("create", None, IP, now=MINUTE)  # an action whose limit is off


@pytest.mark.anyio
async def test_failures_lock_one_secret_first_then_every_reveal() -> None:
    limits = limiter()
    reveal = Limit(100, 60)
    other_secret = "B" * 22
    for _ in range(2):
        await limits.check("reveal", reveal, IP, now=MINUTE, failures=True, secret_id=SECRET)
        await limits.record_failure(IP, now=MINUTE, secret_id=SECRET)
    assert await count(limits, f"failed:{IP}:{SECRET}", 86400) == 2
    assert await count(limits, f"failed:{IP}", 3600) == 2
    with pytest.raises(RateLimited) as refused:
        await limits.check("reveal", reveal, IP, now=MINUTE, failures=True, secret_id=SECRET)
    assert refused.value.limit == "secret_failures"
    # Other links still open for this client, and this link for other clients; a create is
    # not blocked by failures at all.
    await limits.check("reveal", reveal, IP, now=MINUTE, failures=True, secret_id=other_secret)
    await limits.check("reveal", reveal, OTHER, now=MINUTE, failures=True, secret_id=SECRET)
    await limits.record_failure(IP, now=MINUTE)  # a failure that names no secret
    with pytest.raises(RateLimited) as refused:
        await limits.check("reveal", reveal, IP, now=MINUTE, failures=True, secret_id=other_secret)
    assert refused.value.limit == "failures"
    await limits.check("create", Limit(5, 60), IP, now=MINUTE)
    assert await count(limits, f"failed:{IP}", 3600) == 3
    assert await count(limits, f"failed:{IP}:{SECRET}", 86400) == 2


@pytest.mark.anyio
async def test_record_failure_with_limits_off_counts_nothing() -> None:
    limits = limiter(None, None)
    await limits.record_failure(IP, now=MINUTE, secret_id=SECRET)
    assert await count(limits, f"failed:{IP}", 3600) == 0
    assert await count(limits, f"failed:{IP}:{SECRET}", 86400) == 0
    only_secret = limiter(failures=None)
    await only_secret.record_failure(IP, now=MINUTE, secret_id=SECRET)
    await only_secret.record_failure(IP, now=MINUTE)
    assert await count(only_secret, f"failed:{IP}:{SECRET}", 86400) == 1


@pytest.mark.anyio
async def test_admin_failures_lock_the_client_out_of_admin_only() -> None:
    limits = limiter()
    await limits.check_admin(IP, now=MINUTE)
    await limits.record_admin_failure(IP, now=MINUTE)
    assert await count(limits, f"admin-failed:{IP}", 600) == 1
    await limits.check_admin(IP, now=MINUTE)  # one wrong token of two: still let in
    await limits.record_admin_failure(IP, now=MINUTE)
    with pytest.raises(RateLimited) as refused:
        await limits.check_admin(IP, now=MINUTE + timedelta(seconds=30))
    assert refused.value.limit == "admin"
    assert refused.value.retry_after == 570
    assert str(refused.value) == f"{WHY_ADMIN}; try again in 10 minutes."
    assert await count(limits, f"admin-failed:{IP}", 600) == 2  # checking does not count
    await limits.check_admin(OTHER, now=MINUTE)
    await limits.check("reveal", Limit(5, 60), IP, now=MINUTE, failures=True, secret_id=SECRET)
    await limits.check_admin(IP, now=MINUTE + timedelta(seconds=600))  # the next window


@pytest.mark.anyio
async def test_admin_limit_off_never_refuses_nor_counts() -> None:
    limits = limiter(admin_failures=None)
    for _ in range(5):
        await limits.record_admin_failure(IP, now=MINUTE)
        await limits.check_admin(IP, now=MINUTE)
    assert await count(limits, f"admin-failed:{IP}", 600) == 0


@pytest.mark.anyio
async def test_unlock_clears_the_client_counters_and_says_how_many() -> None:
    limits = limiter()
    other_secret = "B" * 22
    for secret_id in (SECRET, SECRET, other_secret):
        await limits.record_failure(IP, now=MINUTE, secret_id=secret_id)
    await limits.record_failure(OTHER, now=MINUTE, secret_id=SECRET)
    await limits.record_admin_failure(IP, now=MINUTE)

    # 3 client-wide failures + 1 admin token + 2 on SECRET
    assert await limits.unlock(IP, now=MINUTE, secret_ids=[SECRET]) == 6
    assert await count(limits, f"failed:{IP}", 3600) == 0
    assert await count(limits, f"admin-failed:{IP}", 600) == 0
    assert await count(limits, f"failed:{IP}:{SECRET}", 86400) == 0
    assert await count(limits, f"failed:{IP}:{other_secret}", 86400) == 1
    assert await count(limits, f"failed:{OTHER}", 3600) == 1
    assert await limits.unlock(IP, now=MINUTE) == 0


@pytest.mark.anyio
async def test_unlock_with_limits_off_clears_nothing() -> None:
    limits = limiter()
    await limits.record_failure(IP, now=MINUTE, secret_id=SECRET)
    await limits.record_admin_failure(IP, now=MINUTE)
    off = RateLimiter(limits.store, None, None, None)
    assert await off.unlock(IP, now=MINUTE, secret_ids=[SECRET]) == 0
    assert await count(limits, f"failed:{IP}", 3600) == 1
