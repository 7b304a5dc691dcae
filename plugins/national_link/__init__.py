"""Link to the national reporting system and ministries' systems (QCVN 125:2021/BTTTT packets, outbox with retries).

This release declares the plugin (name, permissions, per-unit switch); its
screens arrive with the issues that build regimes, forms and reports.
"""

from core.api import Domain, Permission, __version__, hookimpl

NAME = "national_link"


@hookimpl
def register_domain(settings):
    return Domain(
        name=NAME,
        label=f"{NAME}.label",
        description=f"{NAME}.description",
        version=__version__,
        permissions=(
            Permission("national_link.outbox.view", "national_link.perm.outbox.view"),
            Permission("national_link.outbox.admin", "national_link.perm.outbox.admin"),
        ),
    )
