"""The link to the national reporting system and ministries' systems (QCVN 125:2021/BTTTT packets,
ADX and DHIS2 data value sets), on the public plugin API.

- packets/: the 13 QCVN 125 packets, their field mapping, schemas, seal and check;
- send.py: which reports go up, as which packets, queued in the outbox with the acceptance;
- connectors.py: each remote (the Government system, a ministry's, a DHIS2 instance) as an outbox
  channel with its own settings; national_server.py: a national test server playing the Government;
- receive.py: what remotes send down (regimes, catalogues, statuses) checked and proposed;
- codes.py, adx.py, dhis2.py: the code mapping and the figures' exchange with vertical systems;
- routes.py, interop_routes.py: the screens. Hook implementations only here.
"""

from core.api import Domain, Job, MenuItem, Permission, RoleSpec, __version__, for_actions, hookimpl

from .rights import APPLY, MAPPING, OPERATE, OPERATOR_PERMISSIONS, OPERATOR_ROLE, VIEW

NAME = "national_link"


@hookimpl
def register_domain(settings):
    from .interop_routes import ROUTES as INTEROP_ROUTES
    from .routes import ROUTES

    return Domain(
        name=NAME,
        label=f"{NAME}.label",
        description=f"{NAME}.description",
        version=__version__,
        routes=ROUTES + INTEROP_ROUTES,
        permissions=(
            Permission(VIEW, "national_link.perm.exchange.view", delegable=True),
            Permission(OPERATE, "national_link.perm.exchange.operate"),
            Permission(MAPPING, "national_link.perm.mapping.edit"),
            Permission(APPLY, "national_link.perm.proposal.apply"),
        ),
        roles=(RoleSpec(OPERATOR_ROLE, "national_link.role.operator", OPERATOR_PERMISSIONS),),
        menu=(
            MenuItem("national_link.exchange", "national_link.menu.exchange", "national_link:exchange",
                     permission=VIEW, group="admin", order=70),
            MenuItem("national_link.proposals", "national_link.menu.proposals", "national_link:proposals",
                     permission=APPLY, group="admin", order=71),
            MenuItem("national_link.mapping", "national_link.menu.mapping", "national_link:mapping",
                     permission=MAPPING, group="admin", order=72),
        ),
    )


@hookimpl
def register_channels(settings):
    from .connectors import channels

    return channels(settings.plugin(NAME))


@hookimpl
@for_actions("accepted", "submitted")
def report_transition(transition, settings):
    # A consolidated report accepted at a unit that sends through a connector, or a report sent
    # with no receiver in the system: its packets are queued with the step (send.py).
    from .send import on_transition

    on_transition(transition, settings)


@hookimpl
def register_jobs(settings):
    from .receive import fetch_job

    # Every five minutes: read what each remote sent down (its regimes, catalogues, statuses).
    return [Job("fetch", "*/5 * * * *", fetch_job)]


@hookimpl
def register_commands(subparsers):
    from .commands import add_commands

    add_commands(subparsers)


@hookimpl
def startup(settings, registry):
    # The national test server, when the settings ask for it outside production (the demo).
    from .connectors import start_test_server

    start_test_server(settings.plugin(NAME), settings)


@hookimpl
def seed_demo(settings, today, demo_ca):
    # With the national test server asked for (demo.toml): its certificate, and the province
    # switched on for the connectors, carrying the demo's regimes (demo.py).
    from .demo import seed

    seed(settings, demo_ca)
