"""Why a packet is refused: each reason names its place and says what is wrong in both languages.

``place`` is a JSON path into the packet as it travels — wire names, indexes from 0, ``$`` the whole
packet (``body.cells[3].value``, ``header.receiver``, ``signature``), the way the core names the places
of a form file. ``key`` is a message of the plugin (``national_link.packets.error.*``) or of the core
(the schema validator's ``plugin_data.schema.*``, a signature's ``trust.*``), worded in Vietnamese and
English with ``params``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.api import BaocaoError


@dataclass(frozen=True)
class PacketProblem:
    place: str
    key: str
    params: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """What a log keeps (JSON)."""
        return {"place": self.place, "key": self.key, "params": dict(self.params)}


class PacketRefused(BaocaoError):
    """A packet (or a body) that cannot be taken as it is; ``problems`` says every reason.

    Raised by ``to_internal``, by ``new_packet`` for a packet that would break its own schema, and
    by the parsers for what the schema cannot know (a unit no one has). A parser's places are in
    baocao's own names (``body.figures[3].unit``): ``in_wire`` gives them in a mapping's."""

    key = "national_link.packets.error.refused"

    def __init__(self, problems: list[PacketProblem]):
        first = problems[0] if problems else PacketProblem("$", "national_link.packets.error.refused")
        super().__init__(count=len(problems), place=first.place)
        self.problems = list(problems)

    def in_wire(self, packet_type: str, mapping=None) -> list[PacketProblem]:
        from .mapping import DEFAULT_MAPPING, wire_place

        return [PacketProblem(wire_place(packet_type, p.place, mapping or DEFAULT_MAPPING), p.key, p.params)
                for p in self.problems]
