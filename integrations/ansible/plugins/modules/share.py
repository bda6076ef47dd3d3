#!/usr/bin/python
"""burnlink.burnlink.share: share a file or a value as a one-time burnlink link."""

from __future__ import annotations

DOCUMENTATION = r"""
module: share
author: burnlink
short_description: Share a file or a value as a one-time burnlink link
description:
  - Encrypts a file on the target, or a value, with the burnlink Python SDK and stores it on
    a burnlink server; returns the link to send and the manage link (status, burn).
  - The value and the key never reach the server. The returned links are secrets themselves
    (whoever holds the link can read the value once), so register them with C(no_log=true).
options:
  server:
    description: The burnlink server's base URL.
    type: str
    required: true
  path:
    description: A file on the target to share, with its name. Exactly one of I(path) and I(content).
    type: path
  content:
    description: The value to share, as text. Never logged.
    type: str
  ttl:
    description: Seconds until the link expires (default the server's).
    type: int
  views:
    description: How many times it can be read (default 1).
    type: int
  passphrase:
    description: Also protect it with this passphrase. Never logged.
    type: str
  token:
    description: A personal API token (C(blk_...)) to share as its user. Never logged.
    type: str
  recipients:
    description: Signed-in recipients (emails, C(group:NAME), C(domain:NAME)).
    type: list
    elements: str
  allowed_ips:
    description: Addresses or networks that may read it.
    type: list
    elements: str
  label:
    description: Your own name for the secret (never the content).
    type: str
requirements:
  - burnlink (the Python package) on the target's Python
"""

EXAMPLES = r"""
- name: Hand the new admin key to the on-call engineer
  burnlink.burnlink.share:
    server: https://secrets.example.com
    path: /etc/app/admin.key
    ttl: 3600
  register: shared
  no_log: true
"""

RETURN = r"""
link:
  description: The secret link to send.
  type: str
  returned: success
manage_link:
  description: The manage link, for status and burn. Keep it private.
  type: str
  returned: success
expires_at:
  description: When the link expires.
  type: str
  returned: success
max_views:
  description: How many views it allows.
  type: int
  returned: success
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec={
            "server": {"type": "str", "required": True},
            "path": {"type": "path"},
            "content": {"type": "str", "no_log": True},
            "ttl": {"type": "int"},
            "views": {"type": "int"},
            "passphrase": {"type": "str", "no_log": True},
            "token": {"type": "str", "no_log": True},
            "recipients": {"type": "list", "elements": "str"},
            "allowed_ips": {"type": "list", "elements": "str"},
            "label": {"type": "str"},
        },
        required_one_of=[("path", "content")],
        mutually_exclusive=[("path", "content")],
        supports_check_mode=True,
    )
    try:
        from burnlink import Client
        from burnlink.errors import BurnlinkError
    except ImportError:
        module.fail_json(msg="burnlink.burnlink.share needs the burnlink Python package (pip install burnlink)")
    params = module.params
    if module.check_mode:
        module.exit_json(changed=True)
    rules = {
        "recipients": params["recipients"] or [],
        "allowed_ips": params["allowed_ips"] or [],
        "label": params["label"] or "",
    }
    try:
        if params["path"] is not None:
            try:
                with open(params["path"], "rb") as handle:
                    secret = handle.read()
            except OSError as exc:
                module.fail_json(msg=f"path cannot be read ({exc.strerror})")
            name = params["path"].rsplit("/", 1)[-1]
            extra = {"filename": name}
        else:
            secret, extra = params["content"], {}
        with Client(params["server"], token=params["token"]) as client:
            shared = client.share(
                secret,
                ttl=params["ttl"],
                views=params["views"],
                passphrase=params["passphrase"],
                **extra,
                **rules,
            )
    except BurnlinkError as exc:
        # burnlink's messages never hold a value, key or token.
        module.fail_json(msg=f"burnlink: {exc}", code=exc.code)
    module.exit_json(
        changed=True,
        link=shared.url,
        manage_link=shared.manage_url,
        expires_at=shared.expires_at,
        max_views=shared.max_views,
    )


if __name__ == "__main__":
    main()
