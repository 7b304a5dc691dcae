"""The 13 packets of QCVN 125:2021/BTTTT as versioned JSON structures (docs/national_link_packets.md).

- fields.py: what each packet holds, field by field, in baocao's names (one specification);
- mapping.py: the name each field travels under, per mapping version (``baocao-2026.1`` until the
  official names are in hand), and the renaming both ways;
- schemas.py: each packet's JSON Schema, generated from the two, published under docs/;
- envelope.py: a packet made, sealed by the unit's seal, and checked on receipt (``check``);
- build.py: bodies from the domain; parse.py: bodies back into the domain;
- problems.py: why a packet is refused, place by place.

The rest of the plugin imports from here only.
"""

from .build import (decimal_text, disaggregations_body, form_template_body, indicator_catalogue_body,
                    indicator_groups_body, kpi_data_body, kpi_set_body, list_data_body, narrative_body,
                    outline_template_body, period_catalogue_body, regime_body, report_data_body, report_status_body,
                    unit_ref)
from .envelope import MAX_BYTES, Checked, canonical_bytes, check, moment_text, new_packet, problems_of, read, seal
from .fields import PACKET_TYPES, REPORT_STATUSES
from .mapping import DEFAULT_MAPPING, MAPPINGS, Mapping, mapping_named, to_internal, to_wire, wire_place
from .parse import (disaggregations_of, find_unit, form_template_of, indicator_groups_table_of, indicator_table_of,
                    kpi_data_of, kpi_set_of, list_data_of, narrative_of, outline_template_of, period_catalogue_of,
                    regime_spec_of, report_data_of, report_status_of)
from .problems import PacketProblem, PacketRefused
from .schemas import schema

__all__ = [
    "PACKET_TYPES", "REPORT_STATUSES", "DEFAULT_MAPPING", "MAPPINGS", "Mapping", "mapping_named",
    "new_packet", "canonical_bytes", "seal", "check", "read", "problems_of", "Checked", "MAX_BYTES", "moment_text",
    "PacketProblem", "PacketRefused", "schema", "to_internal", "to_wire", "wire_place",
    # builders: domain → body (internal names)
    "regime_body", "form_template_body", "outline_template_body", "report_data_body", "list_data_body",
    "narrative_body", "report_status_body", "period_catalogue_body", "indicator_catalogue_body",
    "indicator_groups_body", "disaggregations_body", "kpi_set_body", "kpi_data_body", "unit_ref", "decimal_text",
    # parsers: body → domain
    "regime_spec_of", "form_template_of", "outline_template_of", "report_data_of", "list_data_of", "narrative_of",
    "report_status_of", "period_catalogue_of", "indicator_table_of", "indicator_groups_table_of",
    "disaggregations_of", "kpi_set_of", "kpi_data_of", "find_unit",
]
