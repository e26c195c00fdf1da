"""Reports through the console's JSON API: the figures per day and workstream or agent, CSV, who may
see them, and their plan (a range of the created_at index, no scan of the messages)."""

import csv
import io
from datetime import date, datetime, timedelta

from app import clock, reports
from app.extensions import db
from tests.test_console_http import customer_says, sign_in
from tests.test_csat import widget
from tests.test_query_plans import plan
from tests.test_supervision import set_role

START = datetime(2026, 11, 2, 9, 0, 0)


def test_a_supervisor_gets_the_day_by_workstream_and_agent_with_csat_and_csv(app, client, world):
    set_role(app, world.agents["ada"][0], "supervisor")
    now = [START]
    clock.set_source(lambda: now[0])
    sign_in(client, world)
    first = customer_says(client, world, "First", "p1", sub="alice")["conversation_id"]
    now[0] = START + timedelta(seconds=30)
    client.post(f"/console/api/conversations/{first}/messages", json={"client_id": "a1", "body": "Hello"})
    now[0] = START + timedelta(seconds=90)
    client.post(f"/console/api/conversations/{first}/end")
    widget(client, world, "POST", f"/conversations/{first}/rating", json={"score": 4})
    second = customer_says(client, world, "Second", "p2", sub="bob")["conversation_id"]
    now[0] = START + timedelta(seconds=150)
    client.post(f"/console/api/conversations/{second}/messages", json={"client_id": "a2", "body": "Hi"})
    client.post(f"/console/api/conversations/{second}/end")
    widget(client, world, "POST", f"/conversations/{second}/rating", sub="bob", json={"score": 2})

    rows = client.get("/console/api/reports?since=2026-11-01&until=2026-11-30").json["rows"]
    assert rows == [
        {
            "day": "2026-11-02",
            "key": world.workstream_id,
            "name": "Support",
            "conversations": 2,
            "ended": 2,
            "first_response_seconds": 45.0,  # 30 s and 60 s
            "resolution_seconds": 75.0,
            "ratings": 2,
            "csat_average": 3.0,
            "csat_1": 0,
            "csat_2": 1,
            "csat_3": 0,
            "csat_4": 1,
            "csat_5": 0,
        }
    ]
    by_agent = client.get("/console/api/reports?since=2026-11-01&until=2026-11-30&by=agent").json["rows"]
    assert [(r["name"], r["conversations"]) for r in by_agent] == [("Ada", 2)]
    assert client.get("/console/api/reports?since=2026-11-03&until=2026-11-30").json["rows"] == []

    exported = client.get("/console/api/reports?since=2026-11-01&until=2026-11-30&format=csv")
    assert exported.mimetype == "text/csv" and "attachment" in exported.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [(r["day"], r["name"], r["csat_average"], r["csat_4"]) for r in table] == [
        ("2026-11-02", "Support", "3.0", "1")
    ]


def test_reports_are_for_supervisors_and_bad_ranges_are_refused(app, client, world):
    sign_in(client, world, "bo")
    refused = client.get("/console/api/reports")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    set_role(app, world.agents["bo"][0], "admin")
    for query in ["since=soon", "by=team", "since=2026-12-02&until=2026-12-01", "since=2020-01-01&until=2026-01-01"]:
        response = client.get(f"/console/api/reports?{query}")
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_request", query
    assert client.get("/console/api/reports").status_code == 200


def test_the_report_reads_a_range_of_conversations_and_never_scans_the_messages(ctx):
    explained = plan(reports.query(date(2026, 11, 1), date(2026, 11, 30), "workstream"))
    if db.engine.dialect.name == "sqlite":
        assert "ix_conversation_created_at" in explained, explained
        assert "SCAN message" not in explained, explained
    else:
        assert "ix_conversation_created_at" in explained, explained
        assert "Seq Scan on message" not in explained, explained
