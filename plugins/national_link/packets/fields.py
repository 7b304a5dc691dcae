"""What each QCVN 125 packet holds, field by field, in baocao's own (internal) names.

One specification serves everything: the builders fill it (build.py), the mapping renames it for the
wire (mapping.py), the JSON Schemas are generated from it (schemas.py) and the parsers read it
(parse.py). A packet is made of *shapes* — named objects, each a tuple of ``Field`` — and the body of
a packet is the shape named after its type (``regime``, ``report_data`` …); shapes used in several
packets (a unit, a period, a form row) are written once.

Inside baocao a body holds JSON values only, because it waits in the outbox as JSON: dates as
``2026-03-14``, times as ``2026-03-14T08:30:00Z`` (UTC), numbers of a report or of the figures as
their canonical text (``1234.5``, never a JSON float, so no system rounds them), files and
signatures as base64. A field left out on the wire takes its ``default`` when read.

The allowed values of a choice (a frequency, a row's kind …) are the domain's, repeated here because
the public plugin API does not export them; tests/plugins/test_national_link_packets.py checks that
each list equals the core's, so they cannot drift apart unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.api import FIGURES_MAX, INDICATOR_AGGREGATIONS, INDICATOR_LEVELS, INDICATOR_VALUE_TYPES

# The 13 packets of QCVN 125:2021/BTTTT, in the regulation's order (legal reference §2.3).
PACKET_TYPES = ("regime", "form_template", "outline_template", "report_data", "list_data", "narrative",
                "report_status", "period_catalogue", "indicator_catalogue", "kpi_set", "indicator_groups",
                "disaggregations", "kpi_data")

# Field types. TEXT, INTEGER, BOOLEAN are JSON's; DATE, MOMENT and BASE64 are texts of a fixed form
# whose meaning is checked too (a 30 February, a broken base64); OBJECT is a shape, LIST an array.
TEXT, INTEGER, BOOLEAN, DATE, MOMENT, BASE64, OBJECT, LIST = (
    "text", "integer", "boolean", "date", "moment", "base64", "object", "list")

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MOMENT_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"
BASE64_PATTERN = r"^[A-Za-z0-9+/]*={0,2}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
AGENCY_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$"  # mã định danh điện tử (QCVN 102): 000.00.00.H50
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$"  # a UUID, or the remote's own id
REPLY_PATTERN = r"^([A-Za-z0-9][A-Za-z0-9._:-]{0,79})?$"
REGIME_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,39}$"  # core.regimes.regimes.CODE_RE
FORM_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9._-]{0,39}$"  # core.regimes.forms.CODE_RE
KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,30}$"  # a form's row, column or section key
INDICATOR_CODE_PATTERN = r"^([THX][0-9]{4}|[A-Z]{2}[0-9]{4})$"  # T0101 (QĐ 05/2023) or KX0301 (local)
GROUP_CODE_PATTERN = r"^([THX][0-9]{2}|[A-Z]{2}[0-9]{2})$"  # T01 or KX03

# The domain's vocabularies (see the module's docstring).
FREQUENCIES = ("monthly", "quarterly", "half_year", "nine_months", "annual")
PERIOD_FREQUENCIES = FREQUENCIES + ("custom",)  # a thematic or ad-hoc request sets its own window
REGIME_TYPES = ("periodic", "thematic", "ad_hoc")
CONTENT_TYPES = ("text", "data", "both")
SENDING_METHODS = ("system", "email", "postal", "fax", "direct", "other")
CUTOFF_RULES = ("decree", "custom")
RECEIVING_RULES = ("unit", "parent", "group_owner")
UNIT_KINDS = ("province", "department", "district", "commune", "agency", "organisation", "individual")
ROW_KINDS = ("indicator", "heading", "computed")
COLUMN_KINDS = ("input", "prefill", "computed")
SEVERITIES = ("blocker", "error", "warning", "info")
PERIOD_OFFSETS = ("current", "previous", "same_last_year", "year_to_date", "year_to_date_last_year", "year",
                  "next_year")
VALUE_KINDS = ("plan", "estimate", "actual", "official")
REPORT_KINDS = ("unit", "consolidated")
# What a report-status packet says: sent (submitted), taken in by the remote (received), accepted,
# or returned for correction with a reason.
REPORT_STATUSES = ("submitted", "received", "accepted", "returned")
SIGNATURE_FORMAT = "cms-detached"

# Sizes: the form engine's limits, the figures query's bound, and room for the longest texts.
MAX_ROWS, MAX_COLUMNS, MAX_RULES, MAX_SECTIONS = 400, 40, 200, 40
MAX_CELLS = MAX_ROWS * MAX_COLUMNS
MAX_LIST = 5000  # units, groups, indicators, periods, references in one packet
LONG_TEXT = 20000  # a regime's content, outline, guidance; a narrative section
VALUE_TEXT = 4000  # one cell or figure as text (a text indicator's answer)
MAX_SIGNATURE = 200_000  # base64 of a CMS with its certificate chain
MAX_DOCUMENT = 8_000_000  # base64 of a report's canonical bytes


@dataclass(frozen=True)
class Field:
    """One field of a shape. ``of``: the shape of an OBJECT; ``item``: what a LIST holds."""

    name: str
    type: str
    description: str
    required: bool = False
    default: object = None
    max_length: int | None = None
    non_empty: bool = False
    pattern: str | None = None
    choices: tuple = ()
    minimum: int | None = None
    maximum: int | None = None
    of: str | None = None
    item: "Field | None" = None
    max_items: int | None = None

    def empty(self):
        """The value of the field when the wire leaves it out."""
        return [] if self.type == LIST else self.default


@dataclass(frozen=True)
class Shape:
    name: str
    description: str
    fields: tuple[Field, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


# -- the vocabulary of the specification ------------------------------------------------------------

def text(name, limit, description, *, required=False, pattern=None, non_empty=False, default=""):
    return Field(name, TEXT, description, required=required, default=default, max_length=limit, pattern=pattern,
                 non_empty=non_empty or required)


def choice(name, choices, description, *, required=False, default=None):
    return Field(name, TEXT, description, required=required, default=default, choices=tuple(choices))


def integer(name, description, *, minimum=None, maximum=None, required=False, default=None):
    return Field(name, INTEGER, description, required=required, default=default, minimum=minimum, maximum=maximum)


def flag(name, description, *, default=False):
    return Field(name, BOOLEAN, description, default=default)


def day(name, description, *, required=False):
    return Field(name, DATE, description, required=required, pattern=DATE_PATTERN)


def moment(name, description, *, required=False):
    return Field(name, MOMENT, description, required=required, pattern=MOMENT_PATTERN)


def blob(name, limit, description, *, required=False):
    return Field(name, BASE64, description, required=required, max_length=limit, pattern=BASE64_PATTERN)


def part(name, shape, description, *, required=False):
    return Field(name, OBJECT, description, required=required, of=shape)


def items(name, item, description, *, max_items=MAX_LIST):
    """A list of ``item``: a shape's name, or a Field (its name unused) for a list of values."""
    item = Field("item", OBJECT, description, of=item) if isinstance(item, str) else item
    return Field(name, LIST, description, item=item, max_items=max_items)


# -- the envelope -----------------------------------------------------------------------------------

ENVELOPE = (
    Shape("packet", "A QCVN 125 packet: its header, its body, and the sender's signature over both.", (
        part("header", "header", "Who sends what to whom, when.", required=True),
        Field("body", OBJECT, "The packet's content; its shape is named after the packet type.", required=True),
        part("signature", "signature", "The sending unit's seal over the packet's canonical bytes (header and "
                                       "body); required on receipt."),
    )),
    Shape("header", "The packet's header.", (
        choice("packet_type", PACKET_TYPES, "One of the 13 packets of QCVN 125:2021/BTTTT.", required=True),
        text("mapping_version", 40, "The field mapping the packet is written in (its field names).", required=True),
        text("message_id", 80, "The message's id, the same when the same message is sent again.",
             required=True, pattern=MESSAGE_ID_PATTERN),
        text("sender", 40, "The sending agency's electronic code (mã định danh, QCVN 102).", required=True,
             pattern=AGENCY_CODE_PATTERN),
        text("receiver", 40, "The receiving agency's electronic code (mã định danh, QCVN 102).", required=True,
             pattern=AGENCY_CODE_PATTERN),
        moment("sent_at", "When it was sent (UTC).", required=True),
        text("in_reply_to", 80, "The message this one answers, if any.", pattern=REPLY_PATTERN),
    )),
    Shape("signature", "A detached CMS signature (RFC 5652) over the packet's canonical bytes.", (
        choice("format", (SIGNATURE_FORMAT,), "Always cms-detached.", required=True),
        blob("value", MAX_SIGNATURE, "The CMS SignedData, DER, in base64.", required=True),
    )),
)

# -- parts several packets share ----------------------------------------------------------------------

COMMON = (
    Shape("unit", "A unit: its electronic code for other systems, its code and name in baocao.", (
        text("agency_code", 40, "Electronic code (mã định danh, QCVN 102); empty when none is recorded."),
        text("code", 40, "The unit's code in the sending system."),
        text("name", 255, "The unit's name."),
    )),
    Shape("period", "A reporting period: its kind, year, place in the year and cut-off window.", (
        choice("frequency", PERIOD_FREQUENCIES, "The kind of period (custom: a window set by a request).",
               required=True),
        integer("year", "The reporting year.", minimum=1990, maximum=2100, required=True),
        integer("index", "Which period of the year (month 1-12, quarter 1-4 …; 0 for a custom window).",
                minimum=0, maximum=12, required=True),
        day("start", "First day of the cut-off window (Decree 09/2019, Art. 12).", required=True),
        day("end", "Last day of the cut-off window.", required=True),
    )),
    Shape("texts", "A text in Vietnamese and English.", (
        text("vi", 500, "Vietnamese."),
        text("en", 500, "English."),
    )),
)

# -- 1 regime, 2 form template, 3 outline template ----------------------------------------------------------

REGIME = (
    Shape("regime", "A reporting regime (chế độ báo cáo, Decree 09/2019 Art. 7), with its form and outline "
                    "templates when it has a form.", (
        text("code", 40, "The regime's code, stable across versions.", required=True, pattern=REGIME_CODE_PATTERN),
        text("name", 2000, "1. The regime's name.", required=True),
        choice("regime_type", REGIME_TYPES, "Periodic, thematic or ad hoc.", required=True),
        choice("frequency", PERIOD_FREQUENCIES, "7. How often it is reported (absent: no fixed frequency)."),
        text("content", LONG_TEXT, "2. What is reported."),
        choice("content_type", CONTENT_TYPES, "Narrative text, data, or both.", default="both"),
        items("reporting_kinds", choice("item", UNIT_KINDS, "A kind of unit."), "3. The kinds of unit that report.",
              max_items=len(UNIT_KINDS)),
        items("reporting_units", "unit", "3. Units that report, named one by one."),
        text("reporting_group", 40, "3. A unit group whose members report (its code).", default=None),
        choice("receiving_rule", RECEIVING_RULES, "4. Who receives: one unit, each reporting unit's parent, or "
                                                  "a unit group's owner.", default="unit"),
        part("receiving_unit", "unit", "4. The receiving unit, when the rule is unit."),
        text("receiving_group", 40, "4. The unit group whose owner receives, when the rule is group_owner.",
             default=None),
        items("sending_methods", choice("item", SENDING_METHODS, "A method."), "5. How reports are sent.",
              max_items=len(SENDING_METHODS)),
        items("deadline_rules", "deadline_rule", "6. Deadlines, lowest level first.", max_items=20),
        choice("cutoff_rule", CUTOFF_RULES, "8. Data cut-off: the Decree's windows or set by the request.",
               default="decree"),
        text("outline", LONG_TEXT, "9. The narrative outline, in words."),
        text("data_forms", LONG_TEXT, "10. The data forms, in words."),
        text("guidance", LONG_TEXT, "11. Guidance for filling it in."),
        text("legal_number", 100, "The number of the act that issued it."),
        day("legal_date", "The date of that act."),
        text("legal_issuer", 255, "Who issued that act."),
        part("issuing_unit", "unit", "The unit that issues the regime."),
        part("preparing_unit", "unit", "The unit that drafted it."),
        part("form_template", "form_template", "Its data form, as the form-template packet carries it."),
        part("outline_template", "outline_template", "Its narrative outline, as the outline-template packet "
                                                     "carries it."),
    )),
    Shape("deadline_rule", "When reports are due at one level of the chain.", (
        text("level", 255, "The level it applies to, in words."),
        text("from_kind", 20, "The kind of unit it applies to (empty: every kind)."),
        text("rule", 40, "The rule: 2wd (working days after the cut-off), after:5 (days), day:25 (a day of "
                         "the month)."),
    )),
    Shape("form_template", "A data form (biểu mẫu báo cáo): rows, columns, unused cells and checks.", (
        text("regime_code", 40, "The regime the form belongs to, if sent for one."),
        text("code", 40, "The form's code.", required=True, pattern=FORM_CODE_PATTERN),
        text("name", 255, "The form's name (Biểu số 01/…).", required=True),
        text("title", 255, "The title printed above the table."),
        items("rows", "form_row", "The rows, in order.", max_items=MAX_ROWS),
        items("columns", "form_column", "The columns, in order.", max_items=MAX_COLUMNS),
        items("greyed", text("item", 90, "A cell as row.column."), "Cells not used.", max_items=MAX_CELLS),
        items("rules", "form_rule", "Checks of the figures.", max_items=MAX_RULES),
    )),
    Shape("form_row", "A row of a form (docs/forms.md).", (
        text("key", 40, "The row's key, used in formulas.", required=True, pattern=KEY_PATTERN),
        choice("kind", ROW_KINDS, "indicator, heading or computed.", required=True),
        text("number", 20, "What the first column shows (1, 2, I, a) …)."),
        text("label", 500, "The row's name."),
        text("indicator", 10, "Indicator rows: the indicator's code."),
        text("option", 100, "Indicator rows: a disaggregation option (empty: the total)."),
        text("unit", 40, "Unit of measure shown on the row."),
        text("formula", 2000, "Computed rows: a formula over row keys."),
        integer("decimals", "Digits shown after the decimal point (absent: as typed).", minimum=0, maximum=6),
        integer("indent", "Indentation of the label (0-4).", minimum=0, maximum=4, default=0),
    )),
    Shape("form_column", "A column of a form (docs/forms.md).", (
        text("key", 40, "The column's key, used in formulas.", required=True, pattern=KEY_PATTERN),
        choice("kind", COLUMN_KINDS, "input, prefill or computed.", required=True),
        text("label", 255, "The heading; may use {m} {m-1} {y} {y-1} {y+1} {py}.", required=True),
        choice("value_kind", VALUE_KINDS, "Which figure the column holds.", default="actual"),
        choice("period", PERIOD_OFFSETS, "Which period the column's figure is for.", default="current"),
        text("formula", 2000, "Computed columns: a formula over column keys."),
        text("accumulate", 40, "Year-to-date columns: the column added up."),
        items("periods", integer("item", "A period index.", minimum=1, maximum=12),
              "Shown only in these period indexes (empty: always).", max_items=12),
        integer("decimals", "Digits shown after the decimal point (absent: as typed).", minimum=0, maximum=6),
        flag("percent", "Shown with a % sign."),
    )),
    Shape("form_rule", "A check of a form's figures.", (
        text("key", 40, "The rule's code."),
        choice("severity", SEVERITIES, "blocker stops sending; the others are shown.", default="error"),
        text("expression", 2000, "A true/false condition.", required=True),
        items("rows", text("item", 40, "A row key."), "Checked only on these rows.", max_items=MAX_ROWS),
        items("columns", text("item", 40, "A column key."), "Checked only on these columns.",
              max_items=MAX_COLUMNS),
        part("message", "texts", "The message shown where it fails; may use {row} and {column}."),
    )),
    Shape("outline_template", "A narrative outline (đề cương): the sections to write, with guidance.", (
        text("regime_code", 40, "The regime the outline belongs to."),
        text("form_code", 40, "The form it belongs to, if any."),
        text("text", LONG_TEXT, "The regime's outline, in words."),
        items("sections", "outline_section", "The sections, in order.", max_items=MAX_SECTIONS),
    )),
    Shape("outline_section", "A section of the narrative.", (
        text("key", 40, "The section's key.", required=True, pattern=KEY_PATTERN),
        text("title", 255, "Its title.", required=True),
        text("guidance", 4000, "What to write in it."),
        flag("required", "It must be written before sending."),
    )),
)

# -- 4 report data, 5 list data, 6 narrative, 7 report status ---------------------------------------------

REPORTS = (
    Shape("report", "The report a packet carries: regime, units, period and the version sent.", (
        integer("id", "The report's id in the sending system.", minimum=1, required=True),
        choice("kind", REPORT_KINDS, "A unit's own report or a consolidated one.", required=True),
        text("regime_code", 40, "The regime's code.", required=True),
        integer("regime_version", "The regime's version.", minimum=1, required=True),
        text("regime_name", 2000, "The regime's name."),
        part("unit", "unit", "The reporting unit.", required=True),
        part("receiver", "unit", "The receiving unit in the sending system (absent: the top of it)."),
        part("period", "period", "The reporting period.", required=True),
        day("deadline", "The day it was due.", required=True),
        text("form_code", 40, "The form's code."),
        integer("form_version", "The form's version.", minimum=1),
        integer("version", "The report's version number (1 for the first sending, then one more each time).",
                minimum=1, required=True),
        moment("submitted_at", "When that version was sent.", required=True),
        moment("accepted_at", "When it was accepted (absent: not accepted in the sending system)."),
        flag("late", "Sent after the deadline."),
    )),
    Shape("report_document", "The report's version exactly as it was frozen and signed: the national "
                             "system can check the report's own signature over these bytes.", (
        text("format", 40, "The document's format (baocao.report/1).", required=True),
        blob("content", MAX_DOCUMENT, "The canonical bytes (UTF-8 JSON), in base64.", required=True),
        text("sha256", 64, "SHA-256 of the canonical bytes, hex.", required=True, pattern=SHA256_PATTERN),
        part("signature", "report_signature", "The signature it was sent with (absent: sent unsigned)."),
    )),
    Shape("report_signature", "A report's signature: a detached CMS over its canonical bytes.", (
        text("kind", 20, "personal (a person's certificate) or seal (the unit's organisation seal)."),
        text("signer_name", 255, "Who signed."),
        text("signer_serial", 80, "The signer certificate's serial number (hex)."),
        text("issuer", 500, "The certificate's issuer."),
        text("fingerprint", 64, "SHA-256 of the signer certificate, hex."),
        moment("signing_time", "When it was signed, as the signer's software stated it."),
        text("status", 20, "The sending system's latest check: valid or indeterminate."),
        choice("format", (SIGNATURE_FORMAT,), "Always cms-detached.", required=True),
        blob("value", MAX_SIGNATURE, "The CMS SignedData, DER, in base64.", required=True),
    )),
    Shape("report_data", "Report data (số liệu báo cáo): every cell of the version sent.", (
        part("report", "report", "The report.", required=True),
        part("document", "report_document", "The signed document the cells come from.", required=True),
        items("cells", "cell", "The cells holding a value, by row then column.", max_items=MAX_CELLS),
    )),
    Shape("cell", "One cell: its row and column, what the form says it holds, and its value.", (
        text("row", 40, "The row's key.", required=True, pattern=KEY_PATTERN),
        text("column", 40, "The column's key.", required=True, pattern=KEY_PATTERN),
        text("indicator", 10, "The row's indicator code (empty: a row without one)."),
        text("option", 100, "The row's disaggregation option (empty: the total)."),
        choice("value_kind", VALUE_KINDS, "Which figure the column holds.", default="actual"),
        choice("period", PERIOD_OFFSETS, "Which period the column's figure is for.", default="current"),
        text("value", VALUE_TEXT, "The value: a number as canonical text (1234.5), or a text.", required=True),
    )),
    Shape("list_data", "List-type report data (số liệu báo cáo danh sách): the report's table as a list of "
                       "records, one per row holding a value, each with its values by column.", (
        part("report", "report", "The report.", required=True),
        items("rows", "list_row", "The records, in the form's order.", max_items=MAX_ROWS),
    )),
    Shape("list_row", "One record: a row of the table.", (
        text("row", 40, "The row's key.", required=True, pattern=KEY_PATTERN),
        text("number", 20, "The row's number on the form."),
        text("label", 1000, "The row's name (an indicator row without one: the indicator's name)."),
        text("indicator", 10, "The row's indicator code (empty: a row without one)."),
        text("option", 100, "The row's disaggregation option."),
        text("unit", 100, "The unit of measure."),
        items("values", "list_value", "The values by column, in the form's order.", max_items=MAX_COLUMNS),
    )),
    Shape("list_value", "One value of a record.", (
        text("column", 40, "The column's key.", required=True, pattern=KEY_PATTERN),
        text("value", VALUE_TEXT, "The value: a number as canonical text, or a text.", required=True),
    )),
    Shape("narrative", "The narrative report (đề cương báo cáo): the text of each section.", (
        part("report", "report", "The report.", required=True),
        items("sections", "narrative_section", "The sections written, in the outline's order.",
              max_items=MAX_SECTIONS),
    )),
    Shape("narrative_section", "One section of the narrative.", (
        text("key", 40, "The section's key.", required=True, pattern=KEY_PATTERN),
        text("title", 255, "Its title."),
        text("text", LONG_TEXT, "What was written.", required=True),
    )),
    Shape("report_status", "A report's status (trạng thái báo cáo): sent, received, accepted or returned.", (
        part("report", "report_ref", "The report it is about.", required=True),
        choice("status", REPORT_STATUSES, "The status.", required=True),
        moment("at", "When the report took that status.", required=True),
        text("reason", 2000, "Why it was returned."),
        items("refs", text("item", 80, "A message id.", pattern=MESSAGE_ID_PATTERN),
              "The messages (packets) of the report the status is about.", max_items=50),
    )),
    Shape("report_ref", "Which report: its regime, unit, period and version.", (
        integer("id", "The report's id in the sending system.", minimum=1),
        text("regime_code", 40, "The regime's code.", required=True),
        part("unit", "unit", "The reporting unit.", required=True),
        part("period", "period", "The reporting period.", required=True),
        integer("version", "The version concerned.", minimum=1),
        text("sha256", 64, "SHA-256 of that version's canonical bytes, hex.", pattern=r"^([0-9a-f]{64})?$"),
    )),
)

# -- 8 periods, 9 indicators, 10 KPI set, 11 groups, 12 disaggregations, 13 KPI data --------------------

CATALOGUES = (
    Shape("period_catalogue", "Reporting periods (danh mục kỳ báo cáo) and their cut-off windows.", (
        items("periods", "catalogue_period", "The periods.", max_items=MAX_LIST),
    )),
    Shape("catalogue_period", "One period of the catalogue.", (
        choice("frequency", PERIOD_FREQUENCIES, "The kind of period.", required=True),
        integer("year", "The reporting year.", minimum=1990, maximum=2100, required=True),
        integer("index", "Which period of the year.", minimum=0, maximum=12, required=True),
        day("start", "First day of the cut-off window.", required=True),
        day("end", "Last day of the cut-off window.", required=True),
        part("label", "texts", "Its name (Tháng 3 năm 2026 / March 2026)."),
    )),
    Shape("indicator_catalogue", "Indicators (danh mục chỉ tiêu báo cáo) with the groups they belong to.", (
        items("groups", "indicator_group", "The groups of the indicators.", max_items=MAX_LIST),
        items("indicators", "indicator", "The indicators, current versions.", max_items=MAX_LIST),
    )),
    Shape("indicator_group", "A group of indicators (nhóm chỉ tiêu).", (
        text("code", 4, "The group's code (T01, KX03).", required=True, pattern=GROUP_CODE_PATTERN),
        text("name", 255, "Its name.", required=True),
        choice("level", INDICATOR_LEVELS, "The level of government it is for.", required=True),
    )),
    Shape("indicator", "An indicator (chỉ tiêu), as the catalogue keeps its current version.", (
        text("code", 6, "The indicator's code (T0101, KX0301).", required=True, pattern=INDICATOR_CODE_PATTERN),
        integer("version", "Its version in the sending system.", minimum=1),
        text("name", 1000, "Its name.", required=True),
        text("group", 4, "Its group's code.", required=True, pattern=GROUP_CODE_PATTERN),
        text("unit_of_measure", 100, "Unit of measure."),
        choice("value_type", INDICATOR_VALUE_TYPES, "number, integer, percent or text.", default="number"),
        choice("aggregation", INDICATOR_AGGREGATIONS, "How values of several units add up.", default="none"),
        items("disaggregation", "category", "Its disaggregations (phân tổ), each with its options.", max_items=30),
        items("levels", choice("item", INDICATOR_LEVELS, "A level."), "The levels that report it.",
              max_items=len(INDICATOR_LEVELS)),
        text("periodicity", 1000, "How often it is published (kỳ công bố), in words."),
        text("agency", 1000, "The agency that collects it."),
        text("higher_code", 20, "Its code in the higher-level system."),
        text("source_act", 1000, "The act that defines it."),
        day("valid_from", "The day this version took effect."),
    )),
    Shape("category", "A disaggregation (phân tổ) and its options.", (
        text("name", 200, "The disaggregation's name (Giới tính).", required=True),
        items("options", text("item", 200, "An option (Nam)."), "Its options (none: only its name is known).",
              max_items=500),
    )),
    Shape("kpi_set", "A KPI set (bộ chỉ số): a named list of indicators followed together.", (
        text("code", 40, "The set's code.", required=True, pattern=REGIME_CODE_PATTERN),
        text("name", 255, "Its name.", required=True),
        items("indicators", "kpi_member", "Its indicators.", max_items=MAX_LIST),
    )),
    Shape("kpi_member", "An indicator of a KPI set.", (
        text("code", 6, "The indicator's code.", required=True, pattern=INDICATOR_CODE_PATTERN),
        text("name", 1000, "Its name."),
        text("unit_of_measure", 100, "Unit of measure."),
    )),
    Shape("indicator_groups", "Indicator groups (danh mục nhóm chỉ số).", (
        items("groups", "indicator_group", "The groups.", max_items=MAX_LIST),
    )),
    Shape("disaggregations", "Disaggregations (danh mục phân tổ chỉ số) of indicators.", (
        items("indicators", "indicator_disaggregation", "The indicators and their disaggregations.",
              max_items=MAX_LIST),
    )),
    Shape("indicator_disaggregation", "An indicator's disaggregations.", (
        text("code", 6, "The indicator's code.", required=True, pattern=INDICATOR_CODE_PATTERN),
        text("name", 1000, "Its name."),
        items("categories", "category", "Its disaggregations.", max_items=30),
    )),
    Shape("kpi_data", "KPI data (dữ liệu chỉ số): figures by indicator, unit, period and kind.", (
        text("kpi_set", 40, "The KPI set the figures are for, if any."),
        items("figures", "figure", "The figures.", max_items=FIGURES_MAX),
    )),
    Shape("figure", "One figure.", (
        text("indicator", 6, "The indicator's code.", required=True, pattern=INDICATOR_CODE_PATTERN),
        part("unit", "unit", "The unit it is of.", required=True),
        part("period", "period", "The period it is for.", required=True),
        choice("kind", VALUE_KINDS, "plan, estimate, actual or official.", default="actual"),
        text("option", 100, "A disaggregation option (empty: the total)."),
        text("value", VALUE_TEXT, "The value: a number as canonical text (1234.5), or a text.", required=True),
    )),
)

SHAPES: dict[str, Shape] = {s.name: s for s in ENVELOPE + COMMON + REGIME + REPORTS + CATALOGUES}


def shapes_of(packet_type: str) -> list[str]:
    """The shapes a packet of ``packet_type`` is made of, the envelope's first, each once."""
    found: list[str] = []

    def visit(name: str) -> None:
        if name in found:
            return
        found.append(name)
        for f in SHAPES[name].fields:
            inner = f.item.of if f.type == LIST and f.item is not None else f.of
            if inner:
                visit(inner)

    visit("packet")
    visit(packet_type)
    return found


def inner_shape(shape: str, field: Field, packet_type: str | None = None) -> str | None:
    """The shape a field's value (or each of its items) has; the packet's body is its type's."""
    if shape == "packet" and field.name == "body":
        return packet_type
    if field.type == LIST and field.item is not None:
        return field.item.of
    return field.of
