"""burnlink.burnlink.secret: the value behind a one-time burnlink link."""

from __future__ import annotations

DOCUMENTATION = r"""
name: secret
author: burnlink
short_description: Read a one-time secret from a burnlink link
description:
  - Opens each link on the controller with the burnlink Python SDK and returns the value.
    The secret is decrypted here; the server never sees the value or the link's key.
  - Each lookup uses one of the secret's views. A lookup in C(vars) runs again every time the
    variable is used, so read it once into a fact with M(ansible.builtin.set_fact) and
    C(no_log=true).
options:
  _terms:
    description: The secret links (C(https://HOST/s/ID#KEY)).
    required: true
  passphrase:
    description: The passphrase, for a protected secret.
    type: str
  token:
    description:
      - A personal API token (C(blk_...)) of a signed-in recipient, for a secret bound to
        recipients. Sent only if the server asks for a sign-in.
    type: str
  base64:
    description: Return the content base64-encoded (for binary files) instead of as text.
    type: bool
    default: false
requirements:
  - burnlink (the Python package) on the controller
"""

EXAMPLES = r"""
- name: Take the database password someone sent
  ansible.builtin.set_fact:
    db_password: "{{ lookup('burnlink.burnlink.secret', incoming_link) }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: The value behind each link (text, or base64 with C(base64=true)).
  type: list
  elements: str
"""

import base64  # noqa: E402

from ansible.errors import AnsibleError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402


class LookupModule(LookupBase):
    """The lookup: one value per link."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            from burnlink import Client
            from burnlink.errors import BurnlinkError
        except ImportError as exc:
            raise AnsibleError(
                "burnlink.burnlink.secret needs the burnlink Python package on the controller"
                " (pip install burnlink)"
            ) from exc
        passphrase = self.get_option("passphrase")
        token = self.get_option("token")
        values = []
        with Client() as client:
            for link in terms:
                try:
                    revealed = client.reveal(str(link), passphrase=passphrase, token=token)
                except BurnlinkError as exc:
                    # burnlink's messages never hold a value, key or token.
                    raise AnsibleError(f"burnlink: {exc}") from None
                if self.get_option("base64"):
                    values.append(base64.b64encode(revealed.content).decode("ascii"))
                    continue
                try:
                    values.append(revealed.content.decode("utf-8"))
                except UnicodeDecodeError:
                    raise AnsibleError(
                        "burnlink: the secret is not UTF-8 text; use base64=true"
                    ) from None
        return values
