"""The part of the store contract that keeps one-time codes (emailed verification codes).

At most one code per secret, stored as a digest; the service asks for and checks them in
``burnlink.service.access``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from burnlink.models import CodeCheck, CodePut

__all__ = ["Codes"]


class Codes(Protocol):
    """One-time codes of secrets."""

    async def put_code(
        self,
        secret_id: str,
        code_digest: bytes,
        *,
        now: datetime,
        expires_at: datetime,
        tries: int,
        resend_after: datetime,
        max_codes: int,
    ) -> CodePut:
        """Atomically replace the secret's one-time code, and say what was done.

        ``GONE`` if the secret is gone; ``TOO_SOON`` if the current code, live or not, was put
        after ``resend_after``, or if ``max_codes`` codes were put since the last match and
        the last is still live; ``SPENT`` if they were and it is not. In those cases nothing
        changes. Otherwise ``SENT``: the new code replaces the old one and counts one more.

        A code is live while ``now < expires_at`` and it has tries left. A code that is used
        up or expired is kept (with when it was put and how many were put) until a match or
        the end of its secret, so neither waiting nor wrong tries make room for more codes.
        """

    async def check_code(
        self, secret_id: str, code_digest: bytes, *, now: datetime
    ) -> CodeCheck | None:
        """Atomically check a one-time code; ``None`` if there is no live code.

        A match deletes the code (it is single-use) and with it the count of codes put. A
        mismatch takes one try; at zero tries the code is no longer live, but is kept.
        """
