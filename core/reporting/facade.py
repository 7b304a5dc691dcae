"""The report domain as the web layer sees it: every name a screen or the JSON API uses.

The web routes import this module only (tests/test_layout.py checks it); the modules behind it
(opening, data, excel, workflow, queue, diff, consolidation, notifications, calendar_changes,
events) may change shape without the screens noticing. A name that would be ambiguous out of its
module gets a longer one here (``review_queue`` for ``queue.queue``, ``export_excel`` for
``excel.export``). Plugins do not use it: their API is ``core.api``.
"""

from __future__ import annotations

# Opening reports, and what a period holds.
from core.reporting.opening import (STATUSES, STATUS_LABELS, issue_and_open, open_request, regime_periods,
                                    regime_reports, reporting_units, reports_for)  # noqa: F401
# Filling a report: its sheet, values, comments, attachments.
from core.reporting.data import (ATTACHMENT_TYPES, CellErrors, EDITABLE, FormVersion, MAX_COMMENT, MISSING,
                                 ReportComment, SaveConflict, Sheet, ShownColumn, add_attachment, add_comment,
                                 can_fill, comments_of, computed_state, delete_attachment, get_attachment,
                                 get_report, input_cells, load_sheet, preview_sheet, save)  # noqa: F401
# The grid's cells as the screens print them.
from core.reporting.grid import value_texts  # noqa: F401
# Excel round-trips.
from core.reporting.excel import (CellsRefused, ExcelImportError, MAX_UPLOAD_BYTES, XLSX_MEDIA,
                                  export as export_excel, filename as excel_filename,
                                  import_upload as import_excel, template as excel_template)  # noqa: F401
# Submitting, returning, accepting, reopening; versions and their history.
from core.reporting.workflow import (MAX_REASON, ReportVersion, SubmitRefused, accept, can_receive,
                                     events as report_events, reopen, return_report, submit, timeliness,
                                     versions)  # noqa: F401
# The receiving unit's review queue.
from core.reporting.queue import (BulkResult, Filters as QueueFilters, MAX_BULK, MAX_RETURN_COMMENTS,
                                  ReturnRefused, bulk_accept, queue as review_queue, return_with_comments,
                                  selected_ids)  # noqa: F401
# Differences between two versions.
from core.reporting.diff import content_of as version_content, diff_versions, version_grid  # noqa: F401
# Consolidated reports.
from core.reporting.consolidation import (KIND as CONSOLIDATED_KIND, aggregated_cells, cell_detail,
                                          changes as consolidation_changes, get_consolidated, last_refresh,
                                          open_consolidated, parse_cell, received_periods,
                                          recorded as consolidation_recorded, refresh as refresh_consolidated,
                                          provenance as consolidation_provenance, running as running_consolidation,
                                          sources_overview)  # noqa: F401
# In-app notifications and the e-mail address they go to.
from core.reporting.notifications import (MAX_EMAIL, PAGE_SIZE as NOTIFICATION_PAGE_SIZE, email_of,
                                          inbox as notification_inbox,
                                          mark_all_read as mark_all_notifications_read,
                                          mark_read as mark_notification_read, report_path, set_email,
                                          link_of as notification_link,
                                          unread_count)  # noqa: F401
# The working-day calendar, with the deadlines it moves.
from core.reporting.calendar_changes import (add_day as add_calendar_day,
                                             remove_day as remove_calendar_day)  # noqa: F401
# Naming the plugins that hear report transitions.
from core.reporting.events import use as use_plugins  # noqa: F401
# The person's work list on the home page.
from core.reporting.worklist import work_list  # noqa: F401
# The report tables, for the usage report's grouped queries (core.usage).
from core.reporting.opening import Report  # noqa: F401
from core.reporting.versions import ReportEvent  # noqa: F401
# Completeness and timeliness of reporting: who sent what, on time or late, by unit, level and regime.
from core.reporting.completeness import (COUNT_FIELDS as COMPLETENESS_COUNTS, Counts as CompletenessCounts,
                                         Filters as CompletenessFilters, PAGE_SIZE as COMPLETENESS_PAGE_SIZE,
                                         SORTS as COMPLETENESS_SORTS, STATES as COMPLETENESS_STATES,
                                         STATE_LABELS as COMPLETENESS_STATE_LABELS,
                                         XLSX_MEDIA as COMPLETENESS_XLSX_MEDIA,
                                         export_filename as completeness_filename,
                                         overdue_units, overview as completeness_overview,
                                         parse_period as parse_completeness_period,
                                         period_view as completeness_period, period_workbook as completeness_workbook,
                                         regime_choices as completeness_regimes, unit_view as completeness_unit,
                                         year_view as completeness_year,
                                         year_workbook as completeness_year_workbook)  # noqa: F401
# Rebuilding live consolidation from the system administrator's screen (issue 14 items 1, 10).
from core.reporting.repair import (PERMISSION as REPAIR_PERMISSION, choices as rebuild_choices,
                                   rebuild as rebuild_consolidation)  # noqa: F401
# Reminders of deadlines and the receiver's "Đôn đốc" (issue 14 item 4).
from core.reporting.reminders import (MAX_DAYS_BEFORE as REMINDER_MAX_DAYS, MAX_MESSAGE as REMINDER_MAX_MESSAGE,
                                      UrgeResult, policy_of as reminder_policy, set_policy as set_reminder_policy,
                                      urge as urge_late_units)  # noqa: F401
# Data quality for reviewers: values far from the unit's history or its peers, and follow-ups.
from core.reporting.quality import (Followup, MAX_NOTE as FOLLOWUP_MAX_NOTE, PAGE_SIZE as FOLLOWUP_PAGE_SIZE,
                                    STATES as FOLLOWUP_STATES, UnitFlags as QualityFlags, clear as clear_followup,
                                    flag_counts as quality_flag_counts, followups as followup_list,
                                    mark as mark_followup, review_quality)  # noqa: F401
