"""Bot first, then a person, in Chromium: the site owner names a bot on the workstream's settings page;
the customer writes, the bot (a small server of the site's, answering through the server API) replies
under its name, the customer asks for a person, the bot hands over, and an agent in the console sees
what the bot said and answers."""

from playwright.sync_api import expect

from app import api_keys, webhooks
from app.agents import add_agent
from app.extensions import db
from e2e.test_admin_site import sign_in
from tests import bot as shop_bot
from tests.support import migrated_app

ROOT_EMAIL, ROOT_PASSWORD = "root@example.com", "root password, long enough"


def test_the_bot_answers_first_and_hands_over_to_an_agent_who_sees_its_part(contexts, console, customer, chat):
    server, _site, world = chat
    bot = shop_bot.Bot(server.url).start()
    try:
        with migrated_app(server.instance).app_context():
            add_agent(ROOT_EMAIL, "Root", "admin", ROOT_PASSWORD, capacity=0)
            webhook = webhooks.create(world.workstream_id, {"url": bot.url, "events": ["message.created"]})
            row, bot.key = api_keys.create({"name": "Shop bot", "workstream_ids": [world.workstream_id]})
            bot.secret, webhook_id, key_id = webhook.secret, webhook.id, row.id
            db.engine.dispose()

        owner = sign_in(contexts().new_page(), server, ROOT_EMAIL, ROOT_PASSWORD)
        owner.goto(f"{server.url}/admin/workstreams/{world.workstream_id}")
        bot_settings = owner.get_by_role("group", name="Bot first, then a person")
        bot_settings.get_by_label("Bot’s webhook").select_option(str(webhook_id))
        bot_settings.get_by_label("Bot’s API key").select_option(str(key_id))
        bot_settings.get_by_label("The bot is called").fill("Botti")
        owner.get_by_role("button", name="Save settings").click()
        expect(owner.get_by_role("status")).to_have_text("Settings saved.")

        ada = console("ada")
        widget = customer("alice")
        widget.write("Hi! Where is my order?")
        from_bot = widget.messages(sender="bot")
        expect(from_bot).to_have_count(1)
        expect(from_bot.locator(".pc-body")).to_have_text(shop_bot.GREETING)
        expect(from_bot.locator(".pc-sender")).to_have_text("Botti (bot)")
        expect(widget.page.locator(".pc-agent")).to_have_text("Botti")
        # Ada is in, but the bot has the conversation: nothing reaches her.
        expect(ada.mine()).to_have_count(0)

        widget.write("I would like to talk to a person, please.")
        expect(from_bot.last.locator(".pc-body")).to_have_text(shop_bot.HANDING_OVER)
        # Handed over and pushed to Ada, who sees the bot's part of the conversation.
        ada.open(shop_bot.HANDING_OVER)
        log = ada.log()
        expect(log.locator('.msg[data-sender="bot"]')).to_have_count(2)
        expect(log.locator('.msg[data-sender="bot"]').first).to_contain_text("Botti (bot)")
        expect(log.locator('.msg[data-sender="bot"]').first).to_contain_text(shop_bot.GREETING)
        expect(log.locator('.msg[data-sender="customer"]').first).to_contain_text("Where is my order?")
        ada.reply("Hi, Ada here. Your order left the warehouse this morning.")
        # The list shows the conversation with what it needs, and nothing that is not there.
        expect(ada.mine().first).to_contain_text("Support · Active")
        expect(ada.mine().first).not_to_contain_text("null")

        expect(widget.messages(sender="agent")).to_contain_text("Ada here")
        expect(widget.page.locator(".pc-agent")).to_have_text("Ada")
        assert bot.receiver.errors == []
    finally:
        bot.stop()
