"""The plugin's permissions and roles, in one place for every module of the plugin."""

APPLY = "chuyen_nganh.delegation.apply"  # at the department's unit: apply, change a returned application
ADMIN = "chuyen_nganh.delegation.admin"  # the operator (system): review, decide, suspend, resume, revoke
VIEW = "chuyen_nganh.delegation.view"  # at the department's unit: read its delegations
# At the department's unit, while a delegation is in force: keep the sector's own indicators
# (groups and indicators in the sector's code namespace), never the province's.
CATALOGUE = "chuyen_nganh.catalogue.edit"

# Granted by a system administrator at a department: may apply for a delegation.
SECTOR_ADMIN_ROLE = "chuyen_nganh.sector_admin"
# Never granted by hand: a delegation in force gives it, at the department, to the administrators
# its decision names (hook ``role_grants``), and ending the delegation takes it back.
DELEGATED_ROLE = "chuyen_nganh.delegated_admin"
# What the department needs, at its own unit, to run its sector's reporting (docs/sector_reporting.md):
# read its units and the catalogue, keep its sector's indicators, design forms, draft and issue its
# sector's regimes, receive, review, return and accept, consolidate and submit (signing it in person).
# Not the organisation seal (core.report.seal): the department's văn thư applies it (TT 41/2017).
DELEGATED_PERMISSIONS = ("core.unit.view", "core.indicator.view", "core.regime.view", "core.regime.edit",
                         "core.regime.issue", "core.report.receive", "core.report.submit", VIEW, CATALOGUE)
