"""Link to the national reporting system and ministries' systems (QCVN 125:2021/BTTTT packets, outbox with retries).

This release declares the plugin (name, per-unit switch); its screens, and the permissions
that guard them, arrive with the issues that build them (a permission nothing checks is not declared).
"""

from core.api import Domain, __version__, hookimpl

NAME = "national_link"


@hookimpl
def register_domain(settings):
    return Domain(
        name=NAME,
        label=f"{NAME}.label",
        description=f"{NAME}.description",
        version=__version__,
    )
