"""Verifying a stored audit log: its state row, its completeness, every entry in its chain,
and its head against anchors kept outside the database (``--checkpoint``, ``--expect-head``).

The chain's own rules (MACs, the state row, ``verify`` of a sequence of entries) are in
``audit.chain``; this module reads them out of an ``AuditStore``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from burnlink.audit.backend import AuditStore
from burnlink.audit.chain import (
    Anchor,
    ChainBounds,
    ChainState,
    Problem,
    VerifyResult,
    averify,
    state_is_authentic,
)

__all__ = ["verify_store"]


async def verify_store(
    store: AuditStore, key: bytes, *, anchors: Sequence[Anchor] = ()
) -> VerifyResult:
    """Verify a store's state row, its completeness, and every entry from its base to its head.

    Read-only. Fails (see "Completeness" above) on a missing or unauthentic state row, on any
    entry outside ``base < seq <= head``, on a damaged chain in between, and on a head behind
    one of ``anchors``. Entries appended while this runs are left for the next run. When a
    purge runs at the same time (the base moved), the check starts over, up to three times.
    """
    result = VerifyResult(0)
    for _ in range(3):
        bounds = await store.bounds()
        state = bounds.state
        if state is None:
            detail = f"{bounds.count} entries stored" if bounds.count else "no entries stored"
            return VerifyResult(0, None, Problem.NO_STATE, None, detail)
        if not state_is_authentic(state, key):
            return VerifyResult(0, None, Problem.BAD_STATE, state.head.seq, "state MAC or key id")
        outside = _outside(bounds, state)
        if outside is not None:
            return outside
        entries = store.iter_entries(after_seq=state.base.seq, through_seq=state.head.seq)
        result = await averify(entries, key, start=state.base, end=state.head)
        if result.ok or (await store.chain_state()).base == state.base:
            break
    else:
        return result
    if not result.ok:
        return result
    for anchor in anchors:
        behind = await _behind(store, state, anchor, result)
        if behind is not None:
            return behind
    return result


def _outside(bounds: ChainBounds, state: ChainState) -> VerifyResult | None:
    """The failure for entries stored outside ``base < seq <= head``, if any."""
    if bounds.last_seq is not None and bounds.last_seq > state.head.seq:
        return VerifyResult(
            0,
            None,
            Problem.OUTSIDE_CHAIN,
            bounds.last_seq,
            f"past the recorded head, seq {state.head.seq}",
        )
    if bounds.first_seq is not None and bounds.first_seq <= state.base.seq:
        return VerifyResult(
            0,
            None,
            Problem.OUTSIDE_CHAIN,
            bounds.first_seq,
            f"at or before the recorded base, seq {state.base.seq}",
        )
    return None


async def _behind(
    store: AuditStore, state: ChainState, anchor: Anchor, intact: VerifyResult
) -> VerifyResult | None:
    """The failure when ``state``'s (verified) head does not reach ``anchor``, if any."""
    if state.head.seq < anchor.seq:
        return VerifyResult(
            intact.checked,
            intact.last_seq,
            Problem.BEHIND_ANCHOR,
            state.head.seq + 1,
            f"the head is seq {state.head.seq}; {anchor.source} records seq {anchor.seq}",
        )
    if anchor.mac is None or anchor.seq < state.base.seq:
        return None  # only a seq to reach, or purged since: nothing left to compare
    if anchor.seq == state.base.seq:
        mac = state.base.mac
    else:
        found = [
            entry
            async for entry in store.iter_entries(after_seq=anchor.seq - 1, through_seq=anchor.seq)
        ]
        mac = found[0].mac if found else b""
    if hmac.compare_digest(mac, anchor.mac):
        return None
    return VerifyResult(
        intact.checked,
        intact.last_seq,
        Problem.BEHIND_ANCHOR,
        anchor.seq,
        f"the entry differs from the one {anchor.source} records",
    )
