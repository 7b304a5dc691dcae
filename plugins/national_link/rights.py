"""The plugin's permissions and role, in one place for every module of the plugin."""

# Read the exchange log, the packets' previews and the proposals received, at the unit and below.
VIEW = "national_link.exchange.view"
# Send now, retry, cancel a message; send a catalogue packet; switch connectors per unit; routes.
OPERATE = "national_link.exchange.operate"
# Keep the code mapping with a vertical system (DHIS2, ADX) and import or export its figures.
MAPPING = "national_link.mapping.edit"
# Apply or reject what the national system sends down (regimes, catalogues, requests).
APPLY = "national_link.proposal.apply"

# The province's operator of the national link (the department in charge of IT, or the Office):
# granted by a system administrator at the province.
OPERATOR_ROLE = "national_link.operator"
OPERATOR_PERMISSIONS = ("core.unit.view", "core.indicator.view", "core.regime.view", VIEW, OPERATE, MAPPING, APPLY)
