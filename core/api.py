"""The public plugin API of the domain layer.

Plugins import from here (and ``web.api`` for screens) and nothing else of
baocao: everything else in ``core`` is private and may change.
"""

from core import CORE_API, __version__
from core.audit import record as audit_record
from core.clock import freeze as freeze_clock, now, today, utcnow
from core.db import BaseModel, Prepared, db, plugin_base, run_db, transaction
from core.errors import BaocaoError, Forbidden, NotFound, PluginError, ValidationError
from core.hookspecs import hookimpl
from core.i18n import fold, format_date, format_number
from core.catalogue.figures import Figure, put_values as put_figures, table as figures_table
from core.catalogue.figures import latest_period as figures_latest_period
from core.catalogue.figures import FigureRow, FiguresQueryError, MAX_FIGURES as FIGURES_MAX, query as figures
from core.reporting.accepted import AcceptedVersion, VersionSignature, accepted_version, report_version
from core.catalogue.indicators import current as current_indicator, groups_with_prefix as indicator_groups_of
from core.catalogue.indicators import save_group as save_indicator_group, save_indicator
from core.catalogue.indicators import (AGGREGATIONS as INDICATOR_AGGREGATIONS, LEVELS as INDICATOR_LEVELS,
                                       VALUE_TYPES as INDICATOR_VALUE_TYPES, apply_plan as apply_indicator_plan,
                                       create_indicator, describe_plan as describe_indicator_plan,
                                       disaggregation_lines as indicator_disaggregation_lines, edit_indicator,
                                       export_table as export_indicator_table, parse_table as parse_indicator_table,
                                       search as search_indicators)
from core.models import Unit, User
from core.jobs import Job, JobContext
from core.outbox import Channel, Message as OutboxMessage, Unavailable as ChannelUnavailable, enqueue
from core.regimes.periods import window as period_window, windows as period_windows
from core.registry import Domain, MenuItem, Permission, RoleSpec, Widget
from core.regimes.authority import IssuingAuthority
from core.regimes.under_authority import AuthorityRegime, regimes_under_authority
from core.reporting.completeness import regime_period_counts
from core.accounts.plugin_grants import RoleGrant
from core.regimes.regimes import RegimeSpec, draft_from_spec as create_regime_draft
from core.reporting.events import Transition, for_actions
from core.reporting.notifications import notify
from core.plugin_data import PluginDataError, plugin_data
from core.settings import Settings
from core.units.groups_api import UnitGroupInfo, unit_group_members, unit_groups
from core.units.tree import ancestor_ids as unit_chain
from core.reporting.overview import ReportOverview, UnitRef, report_overview
from core.regimes.spec_export import regime_by_code, regime_spec
from core.signatures.documents import seal_fingerprint, seal_sign, verify_document
from core.signatures.verification import Verdict as SignatureVerdict
from core.outbox import Entry as OutboxEntry, cancel_entry as cancel_outbox_entry, entries as outbox_entries
from core.outbox import deliver_entries as deliver_outbox_now, retry_entry as retry_outbox_entry
from core.regimes.form_schema import validate as validate_json

__all__ = [
    "CORE_API", "__version__", "audit_record", "BaseModel", "db", "plugin_base", "run_db", "transaction",
    "Prepared",  # a SELECT compiled once and run with new values: for a query asked on every request
    "BaocaoError", "Forbidden", "NotFound", "PluginError", "ValidationError", "hookimpl",
    "fold", "format_date", "format_number", "Unit", "User", "Domain", "MenuItem", "Permission", "RoleSpec",
    "Widget", "Settings",
    # units, unit groups (read-only), periods, the indicator catalogue and its figures
    "unit_chain", "unit_groups", "unit_group_members", "UnitGroupInfo",
    "period_window", "period_windows", "current_indicator", "save_indicator",
    "save_indicator_group", "indicator_groups_of",
    # an owner's own part of the catalogue (a delegated sector's namespace, "NN"): search, create and
    # edit (a new version), the 7-column table's dry run and import limited to a prefix, its export
    "search_indicators", "create_indicator", "edit_indicator", "indicator_disaggregation_lines",
    "parse_indicator_table", "describe_indicator_plan", "apply_indicator_plan", "export_indicator_table",
    "INDICATOR_LEVELS", "INDICATOR_VALUE_TYPES", "INDICATOR_AGGREGATIONS",
    "Figure", "put_figures", "figures_table", "figures_latest_period",
    # the figures query across indicators × units × periods × value kinds (accepted reports publish there)
    "figures", "FigureRow", "FiguresQueryError", "FIGURES_MAX",
    # a report's accepted version and its signature, read-only
    "accepted_version", "AcceptedVersion", "VersionSignature", "report_version",
    # the one clock: today and now in the instance's time zone (stored times stay UTC)
    "today", "now", "utcnow", "freeze_clock",
    # reporting regimes a plugin ships (hook register_regimes), the right to issue beyond the
    # core's rules it may grant a unit (hook issuing_authorities: a delegated sector, Điều 6.3),
    # and the roles its records give a user (hook role_grants: the delegation's administrators)
    "RegimeSpec", "IssuingAuthority", "RoleGrant",
    # read-only: the regimes issued under an authority (and the drafts on its decision), and the
    # numbers of each regime's latest due period (expected, on time, late, not sent, accepted, returned)
    "regimes_under_authority", "AuthorityRegime", "regime_period_counts",
    # a regime a plugin offers, taken up as a draft by a person (its form created and published)
    "create_regime_draft",
    # periodic jobs (hook register_jobs)
    "Job", "JobContext",
    # a report's lifecycle (hook report_transition)
    "Transition", "for_actions", "notify",
    # a plugin's data files (data/indicators.csv, data/forms/*.json, data/regimes/*.toml)
    "plugin_data", "PluginDataError",
    # the outbox: channels plugins register (hook register_channels) and messages queued to them
    "Channel", "OutboxMessage", "ChannelUnavailable", "enqueue",
    # a plugin's screen of its own channels' messages: list, retry now, cancel (audited)
    "outbox_entries", "OutboxEntry", "retry_outbox_entry", "cancel_outbox_entry", "deliver_outbox_now",
    # what a report is about (regime, units with their electronic codes, period, form), and a regime
    # as a RegimeSpec: what a connector forwards to another system
    "report_overview", "ReportOverview", "UnitRef", "regime_spec", "regime_by_code",
    # documents other than reports (a plugin's packets): signed by a unit's seal, verified as reports are
    "seal_sign", "seal_fingerprint", "verify_document", "SignatureVerdict",
    # a JSON document against a JSON Schema of the subset the core's validator knows (form_schema)
    "validate_json",
]
