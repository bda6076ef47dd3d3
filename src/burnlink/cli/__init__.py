"""The command-line client and server launcher: ``burnlink`` (see ``burnlink.cli.main``)."""

import sys

# On import, httpx loads its own command-line client (rich and pygments: about 60 ms, a
# quarter of `burnlink share`'s cold start) unless that import fails, which it tolerates.
# burnlink never runs httpx's client, so a None entry makes that import fail.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
