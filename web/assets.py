"""Pinned front-end assets.

htmx is vendored (committed under ``web/static/core/vendor/``) rather than
loaded from a CDN. That keeps the Content-Security-Policy down to
``script-src 'self'`` and means the app does not depend on any third party
at runtime.

The vendored file is pinned by SHA-256 as a supply-chain safeguard: a test
checks ``HTMX_FILE`` against ``HTMX_SHA256``. Any change to the file, whether
accidental or malicious, fails the test until someone updates the hash here
on purpose. See ``web/static/core/vendor/README.md`` for where the file comes
from and how to upgrade it.
"""

HTMX_VERSION = "2.0.11"

# Path relative to the static root (``web/static``).
HTMX_FILE = "core/vendor/htmx-2.0.11.min.js"

# SHA-256 of the npm package htmx.org@2.0.11, file dist/htmx.min.js.
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
