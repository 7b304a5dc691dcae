"""Socio-economic reporting (báo cáo kinh tế - xã hội): the provincial periodic regimes run by the
planning department, their indicators, and the monthly overview leaders open first.

Hook implementations only; the work is in the modules beside this one.
"""

from core.api import Domain, MenuItem, Permission, __version__, hookimpl, run_db

NAME = "kinhte_xahoi"
DEMO_COMMUNE_SHARE = 0.08
# The one screen of its own, the overview. Its regimes and reports go through the core's rights
# (core.regime.*, core.report.*), so the plugin declares no others. Delegable: a unit administrator
# hands it out with the built-in roles below, which held "read the catalogue" when it guarded the page.
OVERVIEW = "kinhte_xahoi.overview.view"


@hookimpl
def register_domain(settings):
    from .routes import ROUTES

    return Domain(
        name=NAME,
        label=f"{NAME}.label",
        description=f"{NAME}.description",
        version=__version__,
        routes=ROUTES,
        permissions=(Permission(OVERVIEW, "kinhte_xahoi.perm.overview.view", delegable=True),),
        add_to_roles={role: (OVERVIEW,) for role in ("viewer", "reporter", "receiver", "unit_admin",
                                                     "catalogue_admin")},
        menu=(MenuItem("kinhte_xahoi.overview", "kinhte_xahoi.menu.overview", "kinhte_xahoi:overview",
                       permission=OVERVIEW, group="main", order=20),),
    )


@hookimpl
def startup(settings, registry):
    from .catalogue import ensure_catalogue

    async def load():
        await run_db(ensure_catalogue)

    return load


@hookimpl
def register_regimes(settings):
    from .regimes import planning_unit_code, regime_specs

    # The planning department that prepares the regimes: ``[plugins.kinhte_xahoi] planning_unit``
    # (a unit code), else the department named Sở Tài chính; without one an administrator picks it.
    return regime_specs(planning_unit_code(settings.plugin(NAME).get("planning_unit")))


@hookimpl
def seed_demo(settings, today):
    from core.api import Unit, put_figures, transaction

    from .catalogue import ensure_catalogue
    from .figures import demo_figures

    province = Unit.select().where((Unit.kind == "province") & Unit.valid_to.is_null()).order_by(Unit.id).first()
    if province is None:
        return
    with transaction():
        ensure_catalogue()
        put_figures(demo_figures(province.id, today), source="demo")
        # The demo commune's own past months, so its monthly form shows the previous month, the
        # same month last year and its plan pre-filled (about a twelfth of the province).
        commune = Unit.get_or_none((Unit.name == "Phường Đồng Hới") & Unit.valid_to.is_null())
        if commune is not None:
            put_figures(demo_figures(commune.id, today, scale=DEMO_COMMUNE_SHARE), source="demo")
