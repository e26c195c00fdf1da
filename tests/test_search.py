"""Search through the console's JSON API, and its plans: the full-text index finds the messages, the
message table is never scanned. Run on PostgreSQL too (TEST_DATABASE_URL)."""

from app import search
from app.extensions import db
from tests.test_console_http import customer_says, sign_in
from tests.test_query_plans import plan


def hits(client, **query) -> list[dict]:
    response = client.get("/console/api/search", query_string=query)
    assert response.status_code == 200, response.json
    return response.json["results"]


def test_messages_are_found_by_their_words_with_the_match_highlighted(client, world):
    sign_in(client, world)
    parcel = customer_says(client, world, "My parcel to Oulu never arrived", "s1", sub="alice")
    customer_says(client, world, "The parcel box was broken too", "s2", sub="alice")
    invoice = customer_says(client, world, "Lähetä lasku uudelleen, kiitos", "s3", sub="bob")

    found = hits(client, q="parcel")
    # One result per conversation, with its newest matching message.
    assert [r["conversation"]["id"] for r in found] == [parcel["conversation_id"]]
    assert found[0]["message"]["body"] == "The parcel box was broken too"
    assert found[0]["snippet"] == [
        {"text": "The ", "match": False},
        {"text": "parcel", "match": True},
        {"text": " box was broken too", "match": False},
    ]
    finnish = hits(client, q="lasku")
    assert [r["conversation"]["id"] for r in finnish] == [invoice["conversation_id"]]
    assert {"text": "lasku", "match": True} in finnish[0]["snippet"]
    assert hits(client, q="OULU parcel")[0]["message"]["seq"] == 1  # every word, any case
    assert [r["message"]["seq"] for r in hits(client, q="arriv parc")] == [1]  # words are prefixes
    assert hits(client, q="nothing-like-this") == []
    # Words only: the engines' own syntax in a query is just text.
    assert [r["conversation"]["id"] for r in hits(client, q='parcel"*(')] == [parcel["conversation_id"]]


def test_filters_narrow_the_search_and_work_without_words(client, world):
    sign_in(client, world)
    alice = customer_says(client, world, "Where is my order?", "f1", sub="alice")
    bob = customer_says(client, world, "Where is my refund?", "f2", sub="bob")
    assert {r["conversation"]["id"] for r in hits(client, q="where")} == {
        alice["conversation_id"],
        bob["conversation_id"],
    }
    assert [r["conversation"]["id"] for r in hits(client, q="where", customer="BOB")] == [bob["conversation_id"]]
    # customer_says names everyone "Alice A": only the sub tells Bob apart.
    assert [r["conversation"]["id"] for r in hits(client, customer="bo")] == [bob["conversation_id"]]
    assert len(hits(client, customer="alice a")) == 2
    assert hits(client, q="where", status="closed") == []
    assert len(hits(client, status="active", workstream=world.workstream_id)) == 2
    assert hits(client, workstream="elsewhere") == []
    assert len(hits(client, since="2000-01-01", until="2999-12-31")) == 2
    assert hits(client, until="2000-01-01") == []
    assert hits(client, q="where", limit=1)[0]["conversation"]["id"] == bob["conversation_id"]


def test_bad_searches_are_refused_with_json_errors(client, world):
    sign_in(client, world)
    for query in [
        {"status": "lost"},
        {"since": "yesterday"},
        {"q": "x" * 201},
        {"q": "!!!"},
        {"limit": "0"},
        {"limit": "51"},
        {"label": "x"},
        # Once 500s: int() refuses a superscript digit, and the database a number past int4.
        {"label": "\u00b2"},
        {"label": "99999999999999999999"},
        {"label": "2147483648"},
    ]:
        response = client.get("/console/api/search", query_string=query)
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_request", query
    signed_out = client.application.test_client().get("/console/api/search?q=x")
    assert signed_out.status_code == 401


def test_a_text_search_is_driven_by_the_full_text_index_not_a_scan_of_messages(ctx):
    explained = plan(search.message_query(search.Filters(text="parcel oulu"), 100))
    if db.engine.dialect.name == "sqlite":
        assert "SCAN message_fts VIRTUAL TABLE" in explained, explained
        assert "SEARCH message USING INTEGER PRIMARY KEY" in explained, explained
        assert "TEMP B-TREE" not in explained, explained
    else:
        assert "Bitmap Index Scan on ix_message_body_fts" in explained, explained
        assert "message_pkey" not in explained, explained


def test_a_filtered_text_search_never_scans_the_message_table(ctx):
    # With a status or a customer the planner may start from the conversations (few of them are open)
    # and look their messages up by index; either way no message is read that an index did not name.
    explained = plan(search.message_query(search.Filters(text="parcel", status="open", customer="al"), 100))
    if db.engine.dialect.name == "sqlite":
        assert "SCAN message " not in explained + " ", explained
        assert "message_fts VIRTUAL TABLE" in explained, explained
    else:
        assert "Seq Scan on message" not in explained, explained
        assert "ix_message_body_fts" in explained or "Index Cond: (conversation_id =" in explained, explained
