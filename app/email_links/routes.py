"""Unsubscribe: GET shows a page with a button (mail scanners open links, and must not unsubscribe
anyone by doing so); POST, from that button or a mail client's `List-Unsubscribe-Post`, unsubscribes."""

from flask import render_template, request

from .. import notifications, signed_links
from ..errors import ChatError
from . import bp

TEXTS = {
    "en": {
        "title": "Email notifications",
        "ask": "Stop emails about unread replies from {name}?",
        "button": "Stop emails",
        "done": "Done: you will get no more emails about replies from {name}. The chat itself still works.",
        "invalid": "This link is not valid.",
    },
    "fi": {
        "title": "Sähköposti-ilmoitukset",
        "ask": "Lopetetaanko sähköpostit lukemattomista vastauksista ({name})?",
        "button": "Lopeta sähköpostit",
        "done": "Valmis: et saa enää sähköposteja vastauksista ({name}). Chat toimii edelleen.",
        "invalid": "Tämä linkki ei kelpaa.",
    },
}


def _texts() -> tuple[str, dict]:
    lang = request.args.get("lang") if request.args.get("lang") in TEXTS else "en"
    return lang, TEXTS[lang]


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str):
    lang, texts = _texts()
    workstream = signed_links.unsubscribe_target(token)
    if workstream is None:
        return render_template("email_links/unsubscribe.html", lang=lang, t=texts, state="invalid"), 400
    return render_template("email_links/unsubscribe.html", lang=lang, t=texts, state="ask", name=workstream.name)


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str):
    lang, texts = _texts()
    try:
        workstream = notifications.unsubscribe(token)
    except ChatError:
        return render_template("email_links/unsubscribe.html", lang=lang, t=texts, state="invalid"), 400
    return render_template("email_links/unsubscribe.html", lang=lang, t=texts, state="done", name=workstream.name)
