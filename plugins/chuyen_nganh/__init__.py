"""Sector reporting (báo cáo chuyên ngành): regimes a department runs for its own sector (Điều 6.3 of
the provincial regulation).

This step builds the delegation: a department applies to run reporting for its sector over a scope
of units, the operator reviews, the province's decision is recorded, and the delegation is in force
until it is suspended, revoked or expires (delegation.py, docs/sector_reporting.md). Hook
implementations only; the work is in the modules beside this one.
"""

from core.api import Domain, MenuItem, Permission, RoleSpec, Widget, __version__, hookimpl

from .delegation import ADMIN, APPLY, VIEW

NAME = "chuyen_nganh"


@hookimpl
def register_domain(settings):
    from .routes import ROUTES

    return Domain(
        name=NAME,
        label=f"{NAME}.label",
        description=f"{NAME}.description",
        version=__version__,
        routes=ROUTES,
        permissions=(
            # Applying binds the department to the province: not handed out by a unit administrator.
            Permission(APPLY, "chuyen_nganh.perm.delegation.apply"),
            # The operator (the provincial department in charge of IT) acts for the province.
            Permission(ADMIN, "chuyen_nganh.perm.delegation.admin", scope="system"),
            Permission(VIEW, "chuyen_nganh.perm.delegation.view", delegable=True),
        ),
        roles=(RoleSpec("chuyen_nganh.sector_admin", "chuyen_nganh.role.sector_admin",
                        ("core.unit.view", APPLY, VIEW)),),
        # A department's unit administrator reads what the department applied for.
        add_to_roles={"unit_admin": (VIEW,)},
        menu=(
            MenuItem("chuyen_nganh.delegations", "chuyen_nganh.menu.delegations", "chuyen_nganh:delegations",
                     permission=VIEW, group="sector", order=10),
            MenuItem("chuyen_nganh.queue", "chuyen_nganh.menu.queue", "chuyen_nganh:queue",
                     permission=ADMIN, group="admin", order=60),
        ),
    )


@hookimpl
def dashboard_widgets(request):
    from .delegation import news_for

    news = news_for(request.state.access)
    if not (news["waiting"] or news["to_change"] or news["recent"]):
        return []
    return [Widget("chuyen_nganh.delegations", "chuyen_nganh.widget.title", "chuyen_nganh/_widget.html",
                   context={"news": news}, permission=VIEW, order=30)]


@hookimpl
def issuing_authorities(unit_id, day):
    # A department issues its sector's regimes to the units of its delegation, on its decision
    # (Điều 6.3); the core checks each regime against these and stops its periods once none stands.
    from .delegation import authorities

    return authorities(unit_id, day)
