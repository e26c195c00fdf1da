"""Reports through the console's JSON API: the figures per day and workstream or agent, CSV, who may
see them, and their plan (a range of the created_at index, no scan of the messages or the status events)."""

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import update

from app import clock, reports
from app.extensions import db
from app.models import Agent
from tests.test_console_http import customer_says, sign_in
from tests.test_csat import widget
from tests.test_query_plans import plan
from tests.test_supervision import set_role

START = datetime(2026, 11, 2, 9, 0, 0)


def test_a_supervisor_gets_the_day_by_workstream_and_agent_with_csat_and_csv(app, client, world):
    set_role(app, world.agents["ada"][0], "supervisor")
    with app.app_context():
        # Two ended conversations hold capacity in wrap-up: the third must still reach Ada at once.
        db.session.execute(update(Agent).where(Agent.email == world.agents["ada"][0]).values(capacity=1000))
        db.session.commit()
    now = [START]
    clock.set_source(lambda: now[0])

    def at(seconds: int) -> None:
        now[0] = START + timedelta(seconds=seconds)

    def agent(conversation_id: int, action: str, **body) -> None:
        answer = client.post(f"/console/api/conversations/{conversation_id}/{action}", json=body or None)
        assert answer.status_code in (200, 201), answer.json

    # Nobody is signed in: the first customer waits 20 s in the queue.
    first = customer_says(client, world, "First", "p1", sub="alice")["conversation_id"]
    at(20)
    sign_in(client, world)
    at(30)
    agent(first, "messages", client_id="a1", body="Hello")
    at(40)
    agent(first, "park")
    at(100)
    customer_says(client, world, "Back again", "p1b", sub="alice")  # parked 60 s; back to Ada (affinity)
    at(130)
    agent(first, "end")
    widget(client, world, "POST", f"/conversations/{first}/rating", json={"score": 4})
    at(150)
    second = customer_says(client, world, "Second", "p2", sub="bob")["conversation_id"]
    at(170)
    agent(second, "messages", client_id="a2", body="Hi")
    at(180)
    agent(second, "park")
    at(300)
    customer_says(client, world, "Me again", "p2b", sub="bob")  # parked 120 s
    at(310)
    agent(second, "end")
    widget(client, world, "POST", f"/conversations/{second}/rating", sub="bob", json={"score": 2})
    at(320)
    third = customer_says(client, world, "Third", "p3", sub="carol")["conversation_id"]
    at(330)
    agent(third, "messages", client_id="a3", body="Hey")
    at(340)
    agent(third, "park")
    at(400)  # still waiting: parked 60 s so far

    rows = client.get("/console/api/reports?since=2026-11-01&until=2026-11-30").json["rows"]
    assert rows == [
        {
            "day": "2026-11-02",
            "key": world.workstream_id,
            "name": "Support",
            "conversations": 3,
            "ended": 2,
            "first_response_seconds": 20.0,  # 30 s, 20 s and 10 s
            "resolution_seconds": 145.0,  # 130 s and 160 s
            "queue_wait_seconds": 6.7,  # 20 s, then 0 s twice
            "parked": 3,
            "parked_seconds": 80.0,  # 60 s, 120 s and 60 s
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
    assert [(r["name"], r["conversations"], r["parked_seconds"], r["queue_wait_seconds"]) for r in by_agent] == [
        ("Ada", 3, 80.0, 6.7)
    ]
    assert client.get("/console/api/reports?since=2026-11-03&until=2026-11-30").json["rows"] == []
    at(460)  # the stay that goes on counts on
    assert (
        client.get("/console/api/reports?since=2026-11-02&until=2026-11-02").json["rows"][0]["parked_seconds"] == 100.0
    )

    exported = client.get("/console/api/reports?since=2026-11-01&until=2026-11-30&format=csv")
    assert exported.mimetype == "text/csv" and "attachment" in exported.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [
        (r["day"], r["name"], r["queue_wait_seconds"], r["parked"], r["parked_seconds"], r["csat_average"], r["csat_4"])
        for r in table
    ] == [("2026-11-02", "Support", "6.7", "3", "100.0", "3.0", "1")]


def test_reports_are_for_supervisors_and_bad_ranges_are_refused(app, client, world):
    sign_in(client, world, "bo")
    refused = client.get("/console/api/reports")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    set_role(app, world.agents["bo"][0], "admin")
    for query in ["since=soon", "by=team", "since=2026-12-02&until=2026-12-01", "since=2020-01-01&until=2026-01-01"]:
        response = client.get(f"/console/api/reports?{query}")
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_request", query
    assert client.get("/console/api/reports").status_code == 200


@pytest.mark.parametrize("by", reports.GROUPINGS)
def test_the_report_reads_a_range_of_conversations_and_never_scans_messages_or_events(ctx, by):
    explained = plan(reports.query(date(2026, 11, 1), date(2026, 11, 30), by, datetime(2026, 12, 1, 12, 0)))
    assert "ix_conversation_created_at" in explained, explained
    if db.engine.dialect.name == "sqlite":
        assert "SCAN message" not in explained and "SCAN conversation_event" not in explained, explained
        # The first reply by the (conversation_id, seq) index; the first assignment and the stays in
        # waiting by the events' conversation_id index, each once per conversation.
        assert "SEARCH message USING INDEX" in explained, explained
        assert explained.count("SEARCH conversation_event USING INDEX ix_conversation_event_conversation_id_") == 2
    else:
        assert "Seq Scan on message" not in explained, explained
        assert "Seq Scan on conversation_event" not in explained, explained
        assert explained.count("ix_conversation_event_conversation_id_to_status") == 2, explained
