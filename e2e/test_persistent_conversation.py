"""Issue 2's journey, as a customer and an agent see it, in real Chromium.

The widget lives on a host page served from another origin than the chat server; the agent works in a
second browser context.
"""

import re

from playwright.sync_api import expect


def test_customer_writes_agent_sees_it_within_a_second_and_replies(customer, console):
    agent = console("ada")
    alice = customer("alice")
    alice.write("Hello, my order has not arrived")

    expect(agent.mine().filter(has_text="Hello, my order has not arrived")).to_have_count(1, timeout=1000)
    agent.open("Hello, my order")
    expect(agent.log().locator(".msg").filter(has_text="Hello, my order has not arrived")).to_have_count(1)
    agent.reply("Sorry to hear that! Let me check.")

    reply = alice.messages(sender="agent")
    expect(reply).to_have_count(1)
    expect(reply).to_contain_text("Sorry to hear that! Let me check.")
    expect(reply).to_contain_text("Ada")


def test_the_whole_conversation_follows_the_customer_to_another_device(customer, console):
    agent = console("ada")
    laptop = customer("alice")
    laptop.write("First question")
    agent.open("First question")
    agent.reply("First answer")
    expect(laptop.messages(sender="agent")).to_have_count(1)
    laptop.write("Second question")
    conversation = laptop.messages().first.get_attribute("data-conversation")
    laptop.page.context.close()

    phone = customer("alice")
    expect(phone.messages()).to_have_count(3)
    assert phone.bodies() == ["First question", "First answer", "Second question"]
    phone.write("Written on the phone")
    expect(phone.messages()).to_have_count(4)
    assert {m.get_attribute("data-conversation") for m in phone.messages().all()} == {conversation}
    expect(agent.log().locator(".msg").filter(has_text="Written on the phone")).to_have_count(1)


def test_only_the_agent_ends_and_the_next_message_starts_a_new_conversation(customer, console):
    agent = console("ada")
    alice = customer("alice")
    no_end_control = alice.page.get_by_role("button", name=re.compile(r"\bend\b", re.I))
    expect(no_end_control).to_have_count(0)

    alice.write("Can you help?")
    agent.open("Can you help?")
    agent.reply("Done, anything else?")
    expect(alice.messages(sender="agent")).to_have_count(1)
    agent.page.get_by_role("button", name="End conversation").click()
    agent.page.get_by_role("dialog").get_by_role("button", name="End", exact=True).click()
    expect(agent.page.locator("#list-recent li").filter(has_text="Alice")).to_have_count(1)

    divider = alice.log.locator(".pc-divider")
    expect(divider).to_have_text("Conversation ended")
    expect(no_end_control).to_have_count(0)

    alice.write("One more thing")
    first, second = (alice.messages().first, alice.messages().last)
    assert first.get_attribute("data-conversation") != second.get_attribute("data-conversation")
    # The ended conversation stays above the divider, the new one below it.
    texts = alice.log.locator(".pc-msg .pc-body, .pc-divider").all_inner_texts()
    assert texts == ["Can you help?", "Done, anything else?", "Conversation ended", "One more thing"]
    expect(no_end_control).to_have_count(0)
    expect(agent.mine().filter(has_text="One more thing")).to_have_count(1)


def test_another_customer_sees_nothing_of_the_first_whatever_ids_they_send(customer, console, chat):
    server, site, world = chat
    console("ada")
    alice = customer("alice")
    alice.write("My card number is private")
    conversation = int(alice.messages().first.get_attribute("data-conversation"))

    bob = customer("bob")
    expect(bob.messages()).to_have_count(0)
    answers = bob.page.evaluate(
        """async ([chat, workstream, conversation]) => {
            const token = await (await fetch("/token?customer=bob")).text();
            const headers = {Authorization: "Bearer " + token};
            const base = `${chat}/api/widget/workstreams/${workstream}`;
            const statuses = [];
            for (const path of [`/conversations/${conversation}/messages`,
                                `/conversations/${conversation}/messages?after=0`,
                                `/conversations/${conversation}/messages?before=99`]) {
                const r = await fetch(base + path, {headers});
                statuses.push([r.status, await r.text()]);
            }
            const listing = await (await fetch(base + "/conversations", {headers})).json();
            const backlog = await new Promise((resolve) => {
                const ws = new WebSocket(`${chat.replace("http", "ws")}/ws/widget?workstream=${workstream}`);
                ws.onopen = () => ws.send(JSON.stringify(
                    {type: "hello", token, conversation_id: conversation, after: 0}));
                ws.onmessage = (e) => {
                    const frame = JSON.parse(e.data);
                    if (frame.type === "backlog") { ws.close(); resolve(frame); }
                };
            });
            return {statuses, listing, backlog};
        }""",
        [server.url, world.workstream_id, conversation],
    )
    for status, body in answers["statuses"]:
        assert status == 404 and "private" not in body
    assert answers["listing"] == {"conversations": []}
    assert answers["backlog"]["conversations"] == []
    alice.write("Still private")
    expect(bob.messages()).to_have_count(0)


def test_message_text_is_never_interpreted_as_html_on_either_side(customer, console):
    agent = console("ada")
    alice = customer("alice")
    attack = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    alice.write(attack)
    agent.open("<img src=x")
    reply = '<b>bold?</b><iframe src="javascript:window.__pwned=3"></iframe>'
    agent.reply(reply)
    expect(alice.messages(sender="agent")).to_contain_text(reply)
    expect(agent.log().locator(".msg").filter(has_text=attack)).to_have_count(1)
    for page in (alice.page, agent.page):
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img[src=x], b, iframe").count() == 0
