"""The workflow bench (issue 6), on the 60 × 13 report of bench/forms.py after its rounds.

Called by bench/run.py on each backend. The bench CA hierarchy (tests/fixtures/pki.py: root,
intermediate, the reporter's certificate, fresh CRLs) is pinned and the certificate registered;
then, timed:

- return the report and sign it again with a .p12 file and submit (the canonical bytes of 780 cells,
  an RSA-2048 PSS signature, verification: chain to the pinned anchors, CRLs, binding) — the core
  service, as the screen's submit calls it;
- the receiver's queue ("waiting for me") and the review page with the differences between the
  last two versions, through the whole ASGI stack;
- refreshing a consolidated report over the demo's 78 communes' accepted reports of a second
  regime on the same form (each with 200 cells).
"""

from __future__ import annotations

PASSWORD = "bench-p12"


def _pki_setup(username: str):
    from core.signatures import certificates
    from core.signatures import trust
    from core.models import User
    from core.accounts.permissions import core_access
    from tests.fixtures.pki import der, pem, pki

    admin = core_access(User.get(User.username == "quantri"))
    p = pki()
    trust.add_anchor(admin, pem(p.root.certificate))
    trust.add_anchor(admin, der(p.intermediate.certificate))
    trust.upload_crl(admin, der(p.crl(issuer=p.root)))
    trust.upload_crl(admin, der(p.crl()))
    user = User.get(User.username == username)
    me = p.signer("Người nhập thử", key_label="bench-reporter")
    certificates.register_with_key(core_access(user), user.id, me.certificate, me.key, me.chain)
    return p.pkcs12(me, PASSWORD)


def _consolidation_setup(report_id: int, values: dict) -> tuple[int, int]:
    """A second regime on the bench form for every commune, each report filled and accepted; the
    planning department's consolidated report over them. Returns its id and the number of sources."""
    from core.reporting import consolidation
    from core.reporting import workflow as wf
    from core.reporting import data as rd
    from core.regimes import regimes as rg
    from core.models import Unit, User
    from core.accounts.permissions import core_access
    from core.reporting.opening import Report, issue_and_open
    from core.regimes.workdays import WorkCalendar

    admin = core_access(User.get(User.username == "quantri"))
    report = Report.get_by_id(report_id)
    stc = Unit.get(Unit.code == "QT.STC")
    regime = rg.save_draft(admin, {
        "code": "BENCH.TONGHOP", "name": "Báo cáo thử nghiệm tổng hợp", "regime_type": "periodic",
        "content": "Thử nghiệm tổng hợp", "content_type": "data", "kinds": ["commune"],
        "receiving_unit_id": stc.id, "sending_methods": ["system"],
        "deadline_rules": [{"level": "Xã → sở", "from_kind": "commune", "rule": "2wd"}],
        "frequency": "monthly", "cutoff_rule": "decree", "form_id": report.regime.form_id,
        "legal_number": "Thử nghiệm", "legal_date": "2025-08-01", "legal_issuer": "Bench",
        "issuing_unit_id": report.regime.issuing_unit_id, "preparing_unit_id": stc.id})
    issue_and_open(admin, regime.id, calendar=WorkCalendar(), today=report.period_end)
    cells = {cell: (rd.MISSING, value) for cell, value in values.items()}
    sources = list(Report.select().where(Report.regime == regime))
    for source in sources:
        saved = rd.save(admin, source.id, cells, {"ketqua": (rd.MISSING, "Số liệu thử nghiệm.")}, source="bench")
        wf.submit(admin, source.id, revision=saved.revision)
        wf.accept(admin, source.id)
    period = f"{report.period_start.isoformat()}/{report.period_end.isoformat()}"
    consolidated = consolidation.open_consolidated(admin, regime.id, period, unit_id=stc.id)
    return consolidated.id, len(sources)


def run_workflow(client, settings, login_admin, measure, rounds: int) -> dict:
    """Time the workflow on bench/forms.py's report; ``login_admin()`` logs the client in as the
    system administrator (who receives the bench report at the province)."""
    from forms import REPORTER, values_for

    from core.reporting import consolidation
    from core.signatures import signing
    from core.reporting import data as rd
    from core.reporting import workflow as wf
    from core.db import db
    from core.models import User
    from core.accounts.permissions import core_access
    from core.regimes.regimes import Regime
    from core.reporting.opening import Report
    from core.settings import with_overrides

    heavy = max(10, rounds // 10)
    results = {}
    with db.connection_context():
        report_id = Report.select(Report.id).join(Regime).where(Regime.code == "BENCH.THANG").scalar()
        # The form's required narrative section, written once: the figures are the forms bench's.
        rd.save(core_access(User.get(User.username == REPORTER)), report_id,
                sections={"ketqua": (rd.MISSING, "Số liệu thử nghiệm tốc độ.")}, source="bench")
        p12 = _pki_setup(REPORTER)
        reporter_access = core_access(User.get(User.username == REPORTER))
        admin = core_access(User.get(User.username == "quantri"))
    signed_settings = with_overrides(settings, require_signature=True)

    def resubmit():
        with db.connection_context():
            report = Report.get_by_id(report_id)
            if report.status == "submitted":
                wf.return_report(admin, report_id, "Bench: trả lại để ký lại")
                report = Report.get_by_id(report_id)
            signing.sign_and_submit(reporter_access, report_id, revision=report.revision, provider="pkcs12",
                                    inputs={"p12": p12, "password": PASSWORD}, settings=signed_settings)
    results["return + sign .p12 + submit (780 cells)"] = measure(resubmit, heavy)

    login_admin()
    results["GET /inbox (waiting for me)"] = measure(lambda: client.get("/inbox"), heavy)
    page = client.get(f"/reports/{report_id}/review")
    assert page.status_code == 200, page.status_code
    results["GET /reports/{id}/review (with diff)"] = measure(lambda: client.get(f"/reports/{report_id}/review"),
                                                              heavy)

    with db.connection_context():
        consolidated_id, count = _consolidation_setup(report_id, values_for(1))

    def refresh():
        with db.connection_context():
            consolidation.refresh(admin, consolidated_id)
    results[f"consolidate {count} reports × 200 cells"] = measure(refresh, max(5, rounds // 20))
    results["GET consolidation page"] = measure(lambda: client.get(f"/reports/{consolidated_id}/consolidation"),
                                                max(5, rounds // 20))
    return results


