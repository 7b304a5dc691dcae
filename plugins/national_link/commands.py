"""``baocao national_link …``: the operator's commands.

- ``fetch``: read every receiving connector's inbox now (what the worker's job does every five
  minutes) and say what came: received, refused, repeats, or why the remote could not be read;
- ``deliver``: send the national link's waiting packets now (what the worker does every minute);
- ``server``: run the national test server in the foreground (national_server.py), for trying the
  whole exchange on one machine.
"""

from __future__ import annotations

from core.api import deliver_outbox_now

NAME = "national_link"


def _fetch(args, settings) -> int:
    from .receive import fetch_all

    failed = 0
    for result in fetch_all(settings):
        if result.error:
            failed += 1
            print(f"{result.connector}: không đọc được / not read: {result.error}")
        else:
            print(f"{result.connector}: nhận / received {result.received}, từ chối / refused {result.refused}, "
                  f"trùng / repeats {result.repeats}")
    return 1 if failed else 0


def _deliver(args, settings) -> int:
    from .connectors import connectors

    found = connectors(settings.plugin(NAME))
    if not found:
        print("Chưa có kết nối nào / no connector is set")
        return 0
    result = deliver_outbox_now([c.channel for c in found.values()], settings)
    print(f"đã gửi / sent {result.sent}, không gửi được / failed {result.failed}")
    for error in result.errors[:10]:
        print(f"  {error}")
    return 1 if result.failed else 0


def add_commands(subparsers) -> None:
    subparsers.add_parser("fetch", help="Nhận gói tin từ các hệ thống cấp trên / read the remotes' inboxes now")\
        .set_defaults(handler=_fetch)
    subparsers.add_parser("deliver", help="Gửi ngay các gói tin đang chờ / send the waiting packets now")\
        .set_defaults(handler=_deliver)
    from .national_server import add_server_command

    add_server_command(subparsers)
