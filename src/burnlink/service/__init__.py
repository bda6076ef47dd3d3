"""The service layer: burnlink's rules for creating, revealing and burning secrets.

=====================  =====================================================================
``secrets``            ``SecretService``: create, peek, consume, reveal, burn; the one entry
``access``             address, country and admin-token checks, the one-time codes mailed to a
                       secret's recipient, with the rate limits applied
``rate_limits``        counting requests and failures per client and per secret
``curl_mode``          the server-side sealing and opening of curl mode
``receipts``           receipt lines, capped kinds and the signed proof of burn
``reporting``          where events go: audit log, metrics, webhooks, alerts
``sweep``              the periodic sweep: expiries, retention
``deferred``           running work after the answer has gone
=====================  =====================================================================

The web layer and the CLI's ``serve`` call ``SecretService``; see docs/architecture.md.
"""

from burnlink.service.secrets import MAX_PASSPHRASE_CHARS, CreatedSecret, Receipt, SecretService

__all__ = ["MAX_PASSPHRASE_CHARS", "CreatedSecret", "Receipt", "SecretService"]
