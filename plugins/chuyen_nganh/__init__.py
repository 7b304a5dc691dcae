"""Sector reporting (báo cáo chuyên ngành): regimes a department runs for its own sector (Điều 6.3 of
the provincial regulation).

This step builds the delegation: a department applies to run reporting for its sector over a scope
of units, the operator reviews, the province's decision is recorded, and the delegation is in force
until it is suspended, revoked or expires (delegation.py, docs/sector_reporting.md). Hook
implementations only; the work is in the modules beside this one.
"""

from core.api import Domain, MenuItem, Permission, RoleSpec, Widget, __version__, hookimpl

from .rights import ADMIN, APPLY, CATALOGUE, DELEGATED_PERMISSIONS, DELEGATED_ROLE, SECTOR_ADMIN_ROLE, VIEW

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
            # Not delegable: a unit administrator cannot hand it out; a delegation in force gives it.
            Permission(CATALOGUE, "chuyen_nganh.perm.catalogue.edit"),
        ),
        roles=(RoleSpec(SECTOR_ADMIN_ROLE, "chuyen_nganh.role.sector_admin", ("core.unit.view", APPLY, VIEW)),
               RoleSpec(DELEGATED_ROLE, "chuyen_nganh.role.delegated_admin", DELEGATED_PERMISSIONS, assignable=False)),
        # A department's unit administrator reads what the department applied for.
        add_to_roles={"unit_admin": (VIEW,)},
        menu=(
            MenuItem("chuyen_nganh.delegations", "chuyen_nganh.menu.delegations", "chuyen_nganh:delegations",
                     permission=VIEW, group="sector", order=10),
            MenuItem("chuyen_nganh.catalogue", "chuyen_nganh.catalogue.menu", "chuyen_nganh:catalogue",
                     permission=CATALOGUE, group="sector", order=20),
            # The department's own screen of its sector's reporting: for the delegation's administrators.
            MenuItem("chuyen_nganh.sector", "chuyen_nganh.department.menu", "chuyen_nganh:sectors",
                     permission=CATALOGUE, group="sector", order=15),
            # The shipped sector regime templates (issue 15, item 6): for the delegated administrators.
            MenuItem("chuyen_nganh.templates", "chuyen_nganh.menu.templates", "chuyen_nganh:templates",
                     permission=CATALOGUE, group="sector", order=30),
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


@hookimpl
def role_grants(user_id, day):
    # The administrators a delegation's decision names hold the delegated role at the department
    # while it is in force (Điều 9.1c); the core asks on each of their requests.
    from .delegation import role_grants as delegated

    return delegated(user_id, day)


@hookimpl
def seed_demo(settings, today):
    # Sở Nông nghiệp và Môi trường's application, waiting for the operator (demo.py).
    from .demo import seed

    seed()
