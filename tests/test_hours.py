"""Operating hours: parsing, and open/closed answers across daylight saving changes.

Every instant is naive UTC, as stored. Offsets used in the comments:
Helsinki EET = UTC+2, EEST = UTC+3 (2026: summer time from 03:00 EET on 29 March, back at 04:00 EEST on 25 October).
New York EST = UTC-5, EDT = UTC-4 (2026: summer time from 02:00 EST on 8 March, back at 02:00 EDT on 1 November).
"""

from datetime import UTC, date, datetime

import pytest

from app import hours
from app.errors import ChatError

# Pure functions of a calendar and an instant.
pytestmark = pytest.mark.database_independent

DAYS = hours.DAY_NAMES


def calendar(timezone: str, weekly: dict, holidays: list[str] | None = None) -> hours.Calendar:
    spec = {"timezone": timezone, "weekly": weekly}
    if holidays is not None:
        spec["holidays"] = holidays
    return hours.parse(spec)


def daily(timezone: str, start: str = "08:00", end: str = "16:00") -> hours.Calendar:
    return calendar(timezone, {day: [[start, end]] for day in DAYS})


def weekdays(timezone: str, holidays: list[str] | None = None) -> hours.Calendar:
    return calendar(timezone, {day: [["08:00", "16:00"]] for day in DAYS[:5]}, holidays)


HELSINKI_SPEC = {
    "timezone": "Europe/Helsinki",
    "weekly": {
        "mon": [["08:00", "16:00"]],
        "tue": [["08:00", "12:00"], ["13:00", "17:00"]],
        "wed": [["08:00", "16:00"]],
        "thu": [["08:00", "16:00"]],
        "fri": [["08:00", "24:00"]],
        "sat": [["00:00", "24:00"]],
        "sun": [],
    },
    "holidays": ["2026-12-24", "2026-12-25"],
}


# --- parse -----------------------------------------------------------------------------------------------


def test_parse_reads_every_field():
    parsed = hours.parse(HELSINKI_SPEC)
    assert parsed == hours.Calendar(
        timezone="Europe/Helsinki",
        weekly=(
            ((480, 960),),
            ((480, 720), (780, 1020)),
            ((480, 960),),
            ((480, 960),),
            ((480, 1440),),
            ((0, 1440),),
            (),
        ),
        holidays=frozenset({date(2026, 12, 24), date(2026, 12, 25)}),
    )


def test_parse_sorts_intervals_treats_missing_days_as_closed_and_holidays_as_optional():
    parsed = hours.parse({"timezone": "America/New_York", "weekly": {"wed": [["13:00", "14:00"], ["09:00", "12:00"]]}})
    assert parsed.weekly == ((), (), ((540, 720), (780, 840)), (), (), (), ())
    assert parsed.holidays == frozenset()


def test_parse_allows_touching_intervals_and_a_full_quota():
    ten = [[f"{hour:02d}:00", f"{hour + 1:02d}:00"] for hour in range(8, 18)]
    parsed = calendar("UTC", {"mon": ten})
    assert parsed.weekly[0] == tuple((hour * 60, hour * 60 + 60) for hour in range(8, 18))
    year = [date.fromordinal(date(2028, 1, 1).toordinal() + n).isoformat() for n in range(366)]
    assert len(calendar("UTC", {}, year).holidays) == 366


@pytest.mark.parametrize("spec", [None, {}])
def test_nothing_configured_is_always_open(spec):
    assert hours.parse(spec) == hours.ALWAYS_OPEN


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("Europe/Helsinki", "hours"),
        ([], "hours"),
        ({"timezone": "UTC", "weekly": {}, "holiday": []}, "holiday"),
        ({"weekly": {}}, "timezone"),
        ({"timezone": "UTC"}, "weekly"),
        ({"timezone": 2, "weekly": {}}, "timezone"),
        ({"timezone": "Mars/Olympus_Mons", "weekly": {}}, "timezone"),
        ({"timezone": "europe/helsinki", "weekly": {}}, "timezone"),
        ({"timezone": "../etc/passwd", "weekly": {}}, "timezone"),
        ({"timezone": "", "weekly": {}}, "timezone"),
        ({"timezone": "UTC", "weekly": []}, "weekly"),
        ({"timezone": "UTC", "weekly": {"monday": []}}, "monday"),
        ({"timezone": "UTC", "weekly": {"mon": "08:00-16:00"}}, "weekly.mon"),
        ({"timezone": "UTC", "weekly": {"mon": [["08:00"]]}}, "weekly.mon[0]"),
        ({"timezone": "UTC", "weekly": {"mon": [["08:00", "12:00", "16:00"]]}}, "weekly.mon[0]"),
        ({"timezone": "UTC", "weekly": {"mon": ["08:00", "16:00"]}}, "weekly.mon[0]"),
        ({"timezone": "UTC", "weekly": {"tue": [[800, 1600]]}}, "weekly.tue[0] start"),
        ({"timezone": "UTC", "weekly": {"tue": [["8:00", "16:00"]]}}, "weekly.tue[0] start"),
        ({"timezone": "UTC", "weekly": {"tue": [["08:00", "16.00"]]}}, "weekly.tue[0] end"),
        ({"timezone": "UTC", "weekly": {"tue": [["08:00", "16:00:00"]]}}, "weekly.tue[0] end"),
        ({"timezone": "UTC", "weekly": {"tue": [["08:60", "16:00"]]}}, "weekly.tue[0] start"),
        ({"timezone": "UTC", "weekly": {"tue": [["08:00", "25:00"]]}}, "weekly.tue[0] end"),
        ({"timezone": "UTC", "weekly": {"tue": [["08:00", "24:01"]]}}, "weekly.tue[0] end"),
        ({"timezone": "UTC", "weekly": {"tue": [["24:00", "24:00"]]}}, "weekly.tue[0] start"),
        ({"timezone": "UTC", "weekly": {"wed": [["16:00", "08:00"]]}}, "weekly.wed[0]"),
        ({"timezone": "UTC", "weekly": {"wed": [["08:00", "08:00"]]}}, "weekly.wed[0]"),
        ({"timezone": "UTC", "weekly": {"thu": [["08:00", "12:00"], ["11:59", "16:00"]]}}, "weekly.thu"),
        ({"timezone": "UTC", "weekly": {"thu": [["08:00", "16:00"], ["09:00", "10:00"]]}}, "weekly.thu"),
        ({"timezone": "UTC", "weekly": {"fri": [[f"{h:02d}:00", f"{h:02d}:30"] for h in range(11)]}}, "weekly.fri"),
        ({"timezone": "UTC", "weekly": {}, "holidays": "2026-12-24"}, "holidays"),
        ({"timezone": "UTC", "weekly": {}, "holidays": ["2026-12-24", "2026-13-01"]}, "holidays[1]"),
        ({"timezone": "UTC", "weekly": {}, "holidays": ["2026-02-29"]}, "holidays[0]"),
        ({"timezone": "UTC", "weekly": {}, "holidays": ["20261224"]}, "holidays[0]"),
        ({"timezone": "UTC", "weekly": {}, "holidays": ["2026-W52-4"]}, "holidays[0]"),
        ({"timezone": "UTC", "weekly": {}, "holidays": [20261224]}, "holidays[0]"),
        ({"timezone": "UTC", "weekly": {}, "holidays": ["2026-01-01"] * 367}, "holidays"),
    ],
)
def test_malformed_hours_are_refused_naming_the_field(spec, field):
    with pytest.raises(ChatError) as caught:
        hours.parse(spec)
    assert (caught.value.status, caught.value.code) == (400, "invalid_hours")
    assert field in caught.value.message


def test_a_hand_built_calendar_must_hold_sorted_disjoint_intervals():
    with pytest.raises(ValueError):
        hours.Calendar("UTC", (((600, 700), (500, 550)),) + ((),) * 6, frozenset())
    with pytest.raises(ValueError):
        hours.Calendar("UTC", ((),) * 6, frozenset())


# --- to_spec -----------------------------------------------------------------------------------------------


def test_to_spec_round_trips():
    assert hours.to_spec(hours.parse(HELSINKI_SPEC)) == HELSINKI_SPEC
    parsed = hours.parse(HELSINKI_SPEC)
    assert hours.parse(hours.to_spec(parsed)) == parsed


def test_to_spec_lists_closed_days_and_sorts_holidays():
    parsed = calendar("America/New_York", {"sun": [["22:00", "24:00"]]}, ["2026-12-25", "2026-07-04"])
    assert hours.to_spec(parsed) == {
        "timezone": "America/New_York",
        "weekly": {"mon": [], "tue": [], "wed": [], "thu": [], "fri": [], "sat": [], "sun": [["22:00", "24:00"]]},
        "holidays": ["2026-07-04", "2026-12-25"],
    }


def test_always_open_round_trips():
    assert hours.to_spec(hours.ALWAYS_OPEN) == {
        "timezone": "UTC",
        "weekly": {day: [["00:00", "24:00"]] for day in DAYS},
        "holidays": [],
    }
    assert hours.parse(hours.to_spec(hours.ALWAYS_OPEN)) == hours.ALWAYS_OPEN


# --- is_open across daylight saving changes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # Sat 28 March, still EET: 08:00 local is 06:00 UTC.
        (datetime(2026, 3, 28, 5, 59, 59), False),  # 07:59:59 EET
        (datetime(2026, 3, 28, 6, 0), True),  # 08:00 EET
        (datetime(2026, 3, 28, 13, 59, 59), True),  # 15:59:59 EET
        (datetime(2026, 3, 28, 14, 0), False),  # 16:00 EET
        # Sun 29 March, EEST from 01:00 UTC: 08:00 local is 05:00 UTC, an hour earlier in UTC.
        (datetime(2026, 3, 29, 5, 0), True),  # 08:00 EEST
        (datetime(2026, 3, 29, 4, 59, 59), False),  # 07:59:59 EEST
        (datetime(2026, 3, 29, 12, 59, 59), True),  # 15:59:59 EEST
        (datetime(2026, 3, 29, 13, 0), False),  # 16:00 EEST
        # Sat 24 October, still EEST: 08:00 local is 05:00 UTC.
        (datetime(2026, 10, 24, 5, 0), True),  # 08:00 EEST
        (datetime(2026, 10, 24, 13, 0), False),  # 16:00 EEST
        # Sun 25 October, EET from 01:00 UTC: 08:00 local is 06:00 UTC again.
        (datetime(2026, 10, 25, 5, 30), False),  # 07:30 EET
        (datetime(2026, 10, 25, 6, 0), True),  # 08:00 EET
        (datetime(2026, 10, 25, 13, 59, 59), True),  # 15:59:59 EET
        (datetime(2026, 10, 25, 14, 0), False),  # 16:00 EET
    ],
)
def test_is_open_in_helsinki_across_both_dst_changes(instant, expected):
    assert hours.is_open(daily("Europe/Helsinki"), instant) is expected


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # Sat 7 March, EST: 08:00-16:00 local is 13:00-21:00 UTC.
        (datetime(2026, 3, 7, 12, 30), False),  # 07:30 EST
        (datetime(2026, 3, 7, 13, 0), True),  # 08:00 EST
        (datetime(2026, 3, 7, 20, 30), True),  # 15:30 EST
        (datetime(2026, 3, 7, 21, 0), False),  # 16:00 EST
        # Sun 8 March, EDT from 07:00 UTC: 08:00-16:00 local is 12:00-20:00 UTC.
        (datetime(2026, 3, 8, 12, 0), True),  # 08:00 EDT
        (datetime(2026, 3, 8, 11, 59, 59), False),  # 07:59:59 EDT
        (datetime(2026, 3, 8, 20, 0), False),  # 16:00 EDT
        (datetime(2026, 3, 8, 19, 59, 59), True),  # 15:59:59 EDT
        # Sat 31 October, EDT: 12:00-20:00 UTC.
        (datetime(2026, 10, 31, 12, 0), True),  # 08:00 EDT
        (datetime(2026, 10, 31, 20, 30), False),  # 16:30 EDT
        # Sun 1 November, EST from 06:00 UTC: 13:00-21:00 UTC.
        (datetime(2026, 11, 1, 12, 30), False),  # 07:30 EST
        (datetime(2026, 11, 1, 13, 0), True),  # 08:00 EST
        (datetime(2026, 11, 1, 20, 30), True),  # 15:30 EST
        (datetime(2026, 11, 1, 21, 0), False),  # 16:00 EST
    ],
)
def test_is_open_in_new_york_across_both_dst_changes(instant, expected):
    assert hours.is_open(daily("America/New_York"), instant) is expected


def test_a_start_in_the_spring_forward_gap_opens_when_the_gap_ends():
    # 03:30 does not exist in Helsinki on 29 March (03:00 EET jumps to 04:00 EEST at 01:00 UTC), so the
    # interval opens at 04:00 EEST = 01:00 UTC and closes at 05:00 EEST = 02:00 UTC.
    gap = calendar("Europe/Helsinki", {"sun": [["03:30", "05:00"]]})
    assert hours.is_open(gap, datetime(2026, 3, 29, 0, 59, 59)) is False  # 02:59:59 EET
    assert hours.is_open(gap, datetime(2026, 3, 29, 1, 0)) is True  # 04:00 EEST
    assert hours.is_open(gap, datetime(2026, 3, 29, 2, 0)) is False  # 05:00 EEST
    assert hours.next_opening(gap, datetime(2026, 3, 28, 22, 0)) == datetime(2026, 3, 29, 1, 0)
    # The week before, without a gap, the same interval is 03:30-05:00 EET = 01:30-03:00 UTC.
    assert hours.next_opening(gap, datetime(2026, 3, 21, 22, 0)) == datetime(2026, 3, 22, 1, 30)
    # New York: 02:30 does not exist on 8 March (02:00 EST jumps to 03:00 EDT at 07:00 UTC).
    ny_gap = calendar("America/New_York", {"sun": [["02:30", "04:00"]]})
    assert hours.next_opening(ny_gap, datetime(2026, 3, 8, 0, 0)) == datetime(2026, 3, 8, 7, 0)
    assert hours.next_change(ny_gap, datetime(2026, 3, 8, 7, 0)) == datetime(2026, 3, 8, 8, 0)  # 04:00 EDT


def test_an_interval_wholly_inside_the_gap_never_opens():
    inside = calendar("Europe/Helsinki", {"sun": [["03:10", "03:50"]]})
    assert hours.is_open(inside, datetime(2026, 3, 29, 1, 0)) is False
    # The next real opening is the following Sunday, 03:10 EEST = 00:10 UTC.
    assert hours.next_opening(inside, datetime(2026, 3, 29, 0, 0)) == datetime(2026, 4, 5, 0, 10)


def test_ambiguous_fall_back_times_use_their_first_occurrence():
    # New York, 1 November: 01:00-02:00 happens twice, first as EDT (05:00-06:00 UTC), then as EST
    # (06:00-07:00 UTC).
    starts = calendar("America/New_York", {"sun": [["01:30", "03:00"]]})
    assert hours.next_opening(starts, datetime(2026, 11, 1, 0, 0)) == datetime(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert hours.is_open(starts, datetime(2026, 11, 1, 5, 29, 59)) is False  # 01:29:59 EDT
    assert hours.is_open(starts, datetime(2026, 11, 1, 6, 15)) is True  # 01:15 EST, after the first 01:30
    assert hours.next_change(starts, datetime(2026, 11, 1, 5, 30)) == datetime(2026, 11, 1, 8, 0)  # 03:00 EST
    # An end uses the same rule, so this closes at the first 01:30 and the repeated 01:00-01:30 stays closed.
    ends = calendar("America/New_York", {"sun": [["00:00", "01:30"]]})
    assert hours.next_change(ends, datetime(2026, 11, 1, 4, 0)) == datetime(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert hours.is_open(ends, datetime(2026, 11, 1, 6, 15)) is False  # 01:15 EST


def test_a_whole_day_is_23_or_25_hours_when_the_clocks_change():
    sundays = calendar("Europe/Helsinki", {"sun": [["00:00", "24:00"]]})
    # 29 March: 00:00 EET (22:00 UTC the day before) to 00:00 EEST on Monday (21:00 UTC): 23 hours.
    assert hours.next_opening(sundays, datetime(2026, 3, 28, 12, 0)) == datetime(2026, 3, 28, 22, 0)
    assert hours.next_change(sundays, datetime(2026, 3, 28, 22, 0)) == datetime(2026, 3, 29, 21, 0)
    # 25 October: 00:00 EEST (21:00 UTC the day before) to 00:00 EET on Monday (22:00 UTC): 25 hours.
    assert hours.next_opening(sundays, datetime(2026, 10, 24, 12, 0)) == datetime(2026, 10, 24, 21, 0)
    assert hours.next_change(sundays, datetime(2026, 10, 24, 21, 0)) == datetime(2026, 10, 25, 22, 0)


# --- holidays ---------------------------------------------------------------------------------------------------


def test_a_holiday_closes_its_local_date():
    christmas = weekdays("Europe/Helsinki", ["2026-12-24"])
    assert hours.is_open(christmas, datetime(2026, 12, 23, 10, 0)) is True  # Wed 12:00 EET
    assert hours.is_open(christmas, datetime(2026, 12, 24, 10, 0)) is False  # Thu 12:00 EET, a holiday
    assert hours.is_open(christmas, datetime(2026, 12, 25, 10, 0)) is True  # Fri 12:00 EET
    assert hours.next_opening(christmas, datetime(2026, 12, 23, 14, 0)) == datetime(2026, 12, 25, 6, 0)


def test_a_holiday_follows_the_local_date_not_the_utc_date():
    around_the_clock = calendar("Europe/Helsinki", {day: [["00:00", "24:00"]] for day in DAYS}, ["2026-12-24"])
    assert hours.is_open(around_the_clock, datetime(2026, 12, 23, 21, 59, 59)) is True  # 23:59:59 EET on the 23rd
    assert hours.is_open(around_the_clock, datetime(2026, 12, 23, 22, 0)) is False  # 00:00 EET on the 24th
    assert hours.next_change(around_the_clock, datetime(2026, 12, 20, 12, 0)) == datetime(2026, 12, 23, 22, 0)
    assert hours.next_change(around_the_clock, datetime(2026, 12, 23, 22, 0)) == datetime(2026, 12, 24, 22, 0)


# --- next_opening -------------------------------------------------------------------------------------------------


def test_next_opening_from_friday_evening_is_monday_morning():
    # Fri 5 June 18:00 EEST -> Mon 8 June 08:00 EEST = 05:00 UTC.
    assert hours.next_opening(weekdays("Europe/Helsinki"), datetime(2026, 6, 5, 15, 0)) == datetime(2026, 6, 8, 5, 0)
    # Fri 5 June 18:00 EDT -> Mon 8 June 08:00 EDT = 12:00 UTC.
    assert hours.next_opening(weekdays("America/New_York"), datetime(2026, 6, 5, 22, 0)) == datetime(2026, 6, 8, 12, 0)


def test_next_opening_is_the_instant_itself_when_open():
    instant = datetime(2026, 6, 8, 9, 30, 15, 123456)  # Mon 12:30:15 EEST
    assert hours.next_opening(weekdays("Europe/Helsinki"), instant) == instant


def test_next_opening_across_a_dst_change_shifts_by_an_hour_in_utc():
    helsinki = weekdays("Europe/Helsinki")
    # Fri 27 March 18:00 EET -> Mon 30 March 08:00 EEST = 05:00 UTC (Friday's offset would have said 06:00).
    assert hours.next_opening(helsinki, datetime(2026, 3, 27, 16, 0)) == datetime(2026, 3, 30, 5, 0)
    # Fri 23 October 18:00 EEST -> Mon 26 October 08:00 EET = 06:00 UTC (Friday's offset would have said 05:00).
    assert hours.next_opening(helsinki, datetime(2026, 10, 23, 15, 0)) == datetime(2026, 10, 26, 6, 0)
    new_york = weekdays("America/New_York")
    # Fri 6 March 18:00 EST -> Mon 9 March 08:00 EDT = 12:00 UTC.
    assert hours.next_opening(new_york, datetime(2026, 3, 6, 23, 0)) == datetime(2026, 3, 9, 12, 0)
    # Fri 30 October 18:00 EDT -> Mon 2 November 08:00 EST = 13:00 UTC.
    assert hours.next_opening(new_york, datetime(2026, 10, 30, 22, 0)) == datetime(2026, 11, 2, 13, 0)


def test_a_calendar_that_never_opens():
    never = calendar("Europe/Helsinki", {})
    instant = datetime(2026, 6, 5, 15, 0)
    assert hours.is_open(never, instant) is False
    assert hours.next_opening(never, instant) is None
    assert hours.next_change(never, instant) is None


def test_next_opening_reaches_past_a_year_of_holidays():
    # Every day from 2026-01-01 to 2027-01-01 is a holiday, so the first opening is 2027-01-02, 366 days on.
    year = [date.fromordinal(date(2026, 1, 1).toordinal() + n).isoformat() for n in range(366)]
    closed_for_a_year = calendar("UTC", {day: [["09:00", "10:00"]] for day in DAYS}, year)
    assert hours.next_opening(closed_for_a_year, datetime(2025, 12, 31, 10, 0)) == datetime(2027, 1, 2, 9, 0)
    assert hours.next_change(closed_for_a_year, datetime(2025, 12, 31, 10, 0)) == datetime(2027, 1, 2, 9, 0)


def test_next_opening_beyond_the_horizon_is_none():
    # Closed every weekday but Monday, and every Monday for 60 weeks is a holiday: the first opening is
    # over 400 days away.
    mondays = [date.fromordinal(date(2026, 1, 5).toordinal() + 7 * n).isoformat() for n in range(60)]
    far = calendar("UTC", {"mon": [["09:00", "10:00"]]}, mondays)
    assert hours.next_opening(far, datetime(2026, 1, 1)) is None
    assert hours.next_change(far, datetime(2026, 1, 1)) is None
    # The 60th Monday is 2027-02-22, so the first opening is 2027-03-01 09:00: exactly 400 days after
    # 2026-01-25 09:00, which still counts; from a second earlier it is out of reach.
    assert hours.next_opening(far, datetime(2026, 1, 25, 9, 0)) == datetime(2027, 3, 1, 9, 0)
    assert hours.next_change(far, datetime(2026, 1, 25, 9, 0)) == datetime(2027, 3, 1, 9, 0)
    assert hours.next_opening(far, datetime(2026, 1, 25, 8, 59, 59)) is None


# --- ALWAYS_OPEN ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instant",
    [datetime(2026, 3, 29, 1, 0), datetime(2026, 11, 1, 6, 0), datetime(2026, 12, 31, 23, 59, 59, 999999)],
)
def test_always_open(instant):
    assert hours.is_open(hours.ALWAYS_OPEN, instant) is True
    assert hours.next_opening(hours.ALWAYS_OPEN, instant) == instant
    assert hours.next_change(hours.ALWAYS_OPEN, instant) is None


# --- next_change --------------------------------------------------------------------------------------------------


def test_next_change_at_opening_and_at_closing():
    helsinki = weekdays("Europe/Helsinki")
    monday_open, monday_close = datetime(2026, 6, 8, 5, 0), datetime(2026, 6, 8, 13, 0)  # 08:00 and 16:00 EEST
    assert hours.next_change(helsinki, datetime(2026, 6, 8, 4, 59)) == monday_open
    # Strictly after: at the opening instant the next change is the closing, and vice versa.
    assert hours.next_change(helsinki, monday_open) == monday_close
    assert hours.next_change(helsinki, monday_close) == datetime(2026, 6, 9, 5, 0)
    # A split day changes four times.
    split = hours.parse(HELSINKI_SPEC)
    tuesday = [datetime(2026, 6, 9, 5, 0), datetime(2026, 6, 9, 9, 0), datetime(2026, 6, 9, 10, 0)]
    tuesday.append(datetime(2026, 6, 9, 14, 0))
    assert hours.next_change(split, datetime(2026, 6, 9, 0, 0)) == tuesday[0]
    for before, after in zip(tuesday, tuesday[1:], strict=False):
        assert hours.next_change(split, before) == after


def test_intervals_ending_at_2400_run_into_the_next_days_as_one_open_spell():
    split = hours.parse(HELSINKI_SPEC)
    # Fri 08:00-24:00, Sat 00:00-24:00, Sun closed: open from Fri 08:00 EEST (05:00 UTC) to Sunday 00:00
    # EEST (Sat 21:00 UTC), with no change at Friday midnight.
    assert hours.next_change(split, datetime(2026, 6, 12, 5, 0)) == datetime(2026, 6, 13, 21, 0)
    assert hours.is_open(split, datetime(2026, 6, 12, 20, 59, 59)) is True  # Fri 23:59:59 EEST
    assert hours.is_open(split, datetime(2026, 6, 12, 21, 0)) is True  # Sat 00:00 EEST
    assert hours.is_open(split, datetime(2026, 6, 13, 21, 0)) is False  # Sun 00:00 EEST
    # The same weekend across the spring change: Fri 08:00 EET = 06:00 UTC until Sun 00:00 EET = Sat 22:00 UTC;
    # Monday opens at 08:00 EEST = 05:00 UTC.
    assert hours.next_change(split, datetime(2026, 3, 27, 6, 0)) == datetime(2026, 3, 28, 22, 0)
    assert hours.next_change(split, datetime(2026, 3, 28, 22, 0)) == datetime(2026, 3, 30, 5, 0)


def test_2400_into_a_holiday_ends_at_local_midnight():
    helsinki = calendar("Europe/Helsinki", {"wed": [["20:00", "24:00"]], "thu": [["00:00", "24:00"]]}, ["2026-12-24"])
    # Wed 23 December 20:00 EET = 18:00 UTC; Thursday is a holiday, so it closes at 00:00 EET = 22:00 UTC.
    assert hours.next_change(helsinki, datetime(2026, 12, 23, 18, 0)) == datetime(2026, 12, 23, 22, 0)


def test_2400_into_a_midnight_gap():
    # Cairo springs forward at midnight: on Fri 24 April 2026, 00:00 EET becomes 01:00 EEST at 22:00 UTC on
    # the 23rd. Thursday's 24:00 and Friday's 00:00 both fall in the gap and both map to 22:00 UTC, so the
    # evening and the night are one spell ending at Fri 02:00 EEST = 23:00 UTC.
    cairo = calendar("Africa/Cairo", {"thu": [["20:00", "24:00"]], "fri": [["00:00", "02:00"]]})
    assert hours.next_change(cairo, datetime(2026, 4, 23, 18, 0)) == datetime(2026, 4, 23, 23, 0)
    assert hours.is_open(cairo, datetime(2026, 4, 23, 22, 0)) is True  # 01:00 EEST


def test_a_fall_back_across_midnight_repeats_the_evening_after_the_next_day_began():
    # Goose Bay left summer time at 00:01 ADT on Sun 7 November 2010 (03:01 UTC), going back to 23:01 AST on
    # Saturday. Sunday 00:00 first happens at 03:00 UTC, so by the first-occurrence rule Sunday's hours begin
    # then and the repeated Saturday evening belongs to Sunday, even though its local date is Saturday.
    sundays = calendar("America/Goose_Bay", {"sun": [["00:00", "24:00"]]})
    assert hours.next_change(sundays, datetime(2010, 11, 7, 2, 0)) == datetime(2010, 11, 7, 3, 0)
    assert hours.is_open(sundays, datetime(2010, 11, 7, 3, 30)) is True  # Sat 23:30 AST, the second time
    assert hours.next_change(sundays, datetime(2010, 11, 7, 3, 0)) == datetime(2010, 11, 8, 4, 0)  # Mon 00:00 AST
    saturdays = calendar("America/Goose_Bay", {"sat": [["00:00", "24:00"]]})
    assert hours.next_change(saturdays, datetime(2010, 11, 6, 12, 0)) == datetime(2010, 11, 7, 3, 0)
    assert hours.is_open(saturdays, datetime(2010, 11, 7, 3, 30)) is False


def test_a_skipped_local_day():
    # Samoa skipped Friday 30 December 2011: 23:59:59 on the 29th (UTC-10) was followed by 00:00 on the 31st
    # (UTC+14) at 10:00 UTC on the 30th. Daily 10:00-12:00 opens on the 29th at 20:00 UTC, then on the 31st at
    # 10:00 +14 = 20:00 UTC on the 30th.
    apia = daily("Pacific/Apia", "10:00", "12:00")
    assert hours.next_change(apia, datetime(2011, 12, 29, 20, 0)) == datetime(2011, 12, 29, 22, 0)
    assert hours.next_opening(apia, datetime(2011, 12, 29, 22, 0)) == datetime(2011, 12, 30, 20, 0)


def test_aware_instants_are_refused():
    aware = datetime(2026, 6, 8, 9, 0, tzinfo=UTC)
    for function in (hours.is_open, hours.next_opening, hours.next_change):
        with pytest.raises(ValueError):
            function(hours.ALWAYS_OPEN, aware)
