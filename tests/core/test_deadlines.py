"""Report deadlines (Decree 09/2019 Art. 13), the Art. 8 cl. 5 check, and ``baocao periods``."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from core.regimes.deadlines import DeadlineRule, check_chain, deadline_for, nominal_deadline
from core.errors import BaocaoError, ValidationError
from core.regimes.periods import FREQUENCIES, window, windows
from core.regimes.workdays import WorkCalendar

D = dt.date
CAL = WorkCalendar()
SCRIPT = str(Path(sys.executable).with_name("baocao"))


@pytest.mark.parametrize("text, kind, n", [("2wd", "wd", 2), ("1WD", "wd", 1), (" day:20 ", "day", 20),
                                           ("day:25", "day", 25), ("day: 5", "day", 5)])
def test_parse_rule(text, kind, n):
    rule = DeadlineRule.parse(text)
    assert (rule.kind, rule.n) == (kind, n)
    assert DeadlineRule.parse(str(rule)) == rule


@pytest.mark.parametrize("text", ["", "2", "wd", "0wd", "-1wd", "2 days", "day:0", "day:32", "day:", "20",
                                  "day:20x", "2wd;day:20"])
def test_bad_rule_is_refused_naming_the_text(text):
    with pytest.raises(ValidationError) as exc:
        DeadlineRule.parse(text)
    assert exc.value.errors == {"deadline": "deadlines.error.rule"}
    for lang in ("vi", "en"):
        assert f"“{text}”" in exc.value.message(lang)
    assert isinstance(exc.value, BaocaoError)


# Worked examples of the legal reference, §1.5.
def test_province_to_government_by_the_25th():
    q1 = window("quarterly", 2026, 1)
    assert q1.end == D(2026, 3, 14) and deadline_for(q1, "day:25", CAL) == D(2026, 3, 25)
    assert deadline_for(window("annual", 2026, 1), "day:25", CAL) == D(2026, 12, 25)
    assert check_chain(q1, {"province → Government": "day:25"}, CAL)[0].deadline == D(2026, 3, 25)


def test_a_fixed_day_on_a_non_working_day_moves_to_the_next_working_day():
    july = window("monthly", 2026, 7)
    assert nominal_deadline(july, "day:25", CAL) == D(2026, 7, 25)  # Saturday
    assert deadline_for(july, "day:25", CAL) == D(2026, 7, 27)  # Monday
    # A day beyond the month's end means its last day.
    assert nominal_deadline(window("half_year", 2026, 1), "day:31", CAL) == D(2026, 6, 30)


@pytest.mark.parametrize("frequency, index, deadline", [
    ("monthly", 10, D(2026, 10, 16)),  # cut-off Wed 14/10 → Fri 16/10
    ("monthly", 11, D(2026, 11, 17)),  # cut-off Sat 14/11 → Mon 16 is day 1 → Tue 17/11
    ("quarterly", 3, D(2026, 9, 16)),  # cut-off Mon 14/09 → Wed 16/09
])
def test_khanh_hoa_two_working_days(frequency, index, deadline):
    w = window(frequency, 2026, index)
    assert deadline_for(w, "2wd", CAL) == deadline
    assert check_chain(w, {"department → province": "2wd"}, CAL)[0].working_days == 2


def test_chain_october_2026_passes():
    levels = check_chain(window("monthly", 2026, 10), {"reporters": "day:15", "units": "day:16"}, CAL)
    assert [(lv.level, lv.deadline, lv.working_days) for lv in levels] == [
        ("reporters", D(2026, 10, 15), 1), ("units", D(2026, 10, 16), 1)]


def test_chain_november_2026_fifteenth_is_refused_citing_article_8():
    with pytest.raises(ValidationError) as exc:
        check_chain(window("monthly", 2026, 11), {"reporters": "day:15", "units": "day:16"}, CAL)
    assert exc.value.key == "deadlines.error.art8_cutoff"
    vi, en = exc.value.message("vi"), exc.value.message("en")
    assert "Điều 8 khoản 5 Nghị định 09/2019/NĐ-CP" in vi and "15/11/2026" in vi and "reporters" in vi
    assert "Decree 09/2019 Art. 8 cl. 5" in en and "14/11/2026" in en
    # The single rule too: a deadline the reporter may send on Monday, but the regime breaks the decree.
    with pytest.raises(ValidationError):
        check_chain(window("monthly", 2026, 11), {"reporters": "day:15"}, CAL)


def test_chain_refuses_a_level_without_a_working_day_after_the_previous_one():
    october = window("monthly", 2026, 10)
    with pytest.raises(ValidationError) as exc:
        check_chain(october, {"commune → department": "2wd", "department → province": "day:16"}, CAL)
    assert exc.value.key == "deadlines.error.art8_previous"
    assert "commune → department" in exc.value.message("vi") and "Art. 8 cl. 5" in exc.value.message("en")
    # The previous level's effective deadline counts: Sat 25/07 moves to Mon 27/07, so Mon 27/07 leaves 0.
    july = window("monthly", 2026, 7)
    with pytest.raises(ValidationError):
        check_chain(july, {"department": "day:25", "province": "day:27"}, CAL)
    assert check_chain(july, {"department": "day:25", "province": "day:28"}, CAL)[1].working_days == 1


def test_a_fixed_day_before_the_cut_off_is_refused():
    with pytest.raises(ValidationError):
        check_chain(window("monthly", 2026, 10), {"x": "day:10"}, CAL)


rules = st.one_of(st.integers(1, 20).map(lambda n: f"{n}wd"), st.integers(1, 31).map(lambda n: f"day:{n}"))


@given(st.sampled_from(FREQUENCIES), st.integers(1995, 2095), rules, st.data())
def test_deadlines_never_fall_on_a_weekend_or_public_holiday(frequency, year, rule, data):
    w = data.draw(st.sampled_from(windows(frequency, year)))
    deadline = deadline_for(w, rule, CAL)
    assert deadline.weekday() < 5 and CAL.holiday_name(deadline) is None
    assert deadline >= nominal_deadline(w, rule, CAL)


@given(st.integers(1995, 2095), st.integers(1, 12), st.integers(1, 10))
def test_working_day_rules_always_pass_article_8(year, month, n):
    level = check_chain(window("monthly", year, month), {"level": f"{n}wd"}, CAL)[0]
    assert level.working_days == n and level.deadline > window("monthly", year, month).end


# -- baocao periods -----------------------------------------------------------------------------

def run(*args, cwd) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8"}
    return subprocess.run([SCRIPT, "periods", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=120)


def test_cli_periods_json(tmp_path):
    result = run("--frequency", "quarterly", "--year", "2026", "--deadline", "day:25", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["label"], r["start"], r["end"], r["iso_interval"], r["deadline"]) for r in rows] == [
        ("Quý I năm 2026", "2025-12-15", "2026-03-14", "2025-12-15/P3M", "2026-03-25"),
        ("Quý II năm 2026", "2026-03-15", "2026-06-14", "2026-03-15/P3M", "2026-06-25"),
        ("Quý III năm 2026", "2026-06-15", "2026-09-14", "2026-06-15/P3M", "2026-09-25"),
        ("Quý IV năm 2026", "2026-09-15", "2026-12-14", "2026-09-15/P3M", "2026-12-25"),
    ]
    result = run("--frequency", "monthly", "--year", "2026", "--deadline", "2wd", "--json", "--lang", "en",
                 cwd=tmp_path)
    rows = json.loads(result.stdout)
    assert len(rows) == 12 and rows[0]["label"] == "January 2026"
    assert {r["label"]: r["deadline"] for r in rows}["November 2026"] == "2026-11-17"
    rows = json.loads(run("--frequency", "nine_months", "--year", "2026", "--json", cwd=tmp_path).stdout)
    assert rows == [{"frequency": "nine_months", "year": 2026, "index": 1, "label": "9 tháng năm 2026",
                     "start": "2025-12-15", "end": "2026-09-14", "iso_interval": "2025-12-15/P9M",
                     "deadline_rule": None, "deadline": None, "nominal_deadline": None}]


def test_cli_periods_table(tmp_path):
    result = run("--frequency", "monthly", "--year", "2026", "--deadline", "day:25", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    july = next(line for line in result.stdout.splitlines() if line.startswith("Tháng 7 năm 2026"))
    assert "15/06/2026 – 14/07/2026" in july and "2026-06-15/P1M" in july
    assert "Thứ Hai 27/07/2026" in july and "Thứ Bảy 25/07/2026" in july


@pytest.mark.parametrize("args, needle", [
    (("--frequency", "weekly", "--year", "2026"), "weekly"),
    (("--frequency", "monthly", "--year", "2026", "--deadline", "2 days"), "2 days"),
    (("--frequency", "monthly", "--year", "2026", "--deadline", "day:15"), "Art. 8 cl. 5"),
    (("--frequency", "monthly", "--year", "2026", "--day-off", "2026-13-01"), "2026-13-01"),
])
def test_cli_periods_refuses_in_one_line(tmp_path, args, needle):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and needle in result.stderr


# -- "+Nwd": N working days after the previous level's deadline (issue 4) --------------------------

@pytest.mark.parametrize("text, n", [("+1wd", 1), ("+ 2WD", 2), (" +3wd ", 3)])
def test_parse_a_rule_after_the_previous_level(text, n):
    rule = DeadlineRule.parse(text)
    assert (rule.kind, rule.n, rule.after_previous) == ("after", n, True)
    assert DeadlineRule.parse(str(rule)) == rule and str(rule) == f"+{n}wd"


@pytest.mark.parametrize("text", ["+", "+day:20", "+0wd", "++1wd", "+1"])
def test_bad_after_rules_are_refused(text):
    with pytest.raises(ValidationError):
        DeadlineRule.parse(text)


def test_a_level_counted_from_the_previous_levels_deadline():
    # November 2026: cut-off Sat 14/11 → communes 2wd Tue 17/11 → departments +1wd Wed 18/11 →
    # province +2wd Fri 20/11.
    levels = check_chain(window("monthly", 2026, 11), {"communes": "2wd", "departments": "+1wd",
                                                        "province": "+2wd"}, CAL)
    assert [(lv.level, lv.deadline, lv.working_days) for lv in levels] == [
        ("communes", D(2026, 11, 17), 2), ("departments", D(2026, 11, 18), 1), ("province", D(2026, 11, 20), 2)]


def test_after_counts_from_the_previous_effective_deadline_across_a_weekend():
    # July 2026: "day:25" is Saturday 25/07 → effective Monday 27/07; +1wd → Tuesday 28/07.
    levels = check_chain(window("monthly", 2026, 7), {"units": "day:25", "province": "+1wd"}, CAL)
    assert [lv.deadline for lv in levels] == [D(2026, 7, 27), D(2026, 7, 28)]


def test_after_on_the_first_level_is_refused():
    from core.regimes.deadlines import DeadlineAfterFirstError

    with pytest.raises(DeadlineAfterFirstError) as exc:
        check_chain(window("monthly", 2026, 10), {"units": "+1wd"}, CAL)
    assert exc.value.errors == {"deadline": "deadlines.error.after_first"}
    assert "“units”" in exc.value.message("vi") and "+1wd" in exc.value.message("en")
    with pytest.raises(DeadlineAfterFirstError):
        nominal_deadline(window("monthly", 2026, 10), "+1wd", CAL)


def test_non_strict_chain_gives_deadlines_without_the_art8_refusal():
    levels = check_chain(window("monthly", 2026, 11), {"reporters": "day:15"}, CAL, strict=False)
    assert (levels[0].nominal, levels[0].deadline, levels[0].working_days) == (D(2026, 11, 15), D(2026, 11, 16), 0)
