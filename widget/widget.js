/*
 * Persistent Chat widget, no build step, no dependencies. Served as /widget.js, minified, in one closure
 * after static/message_time.js (the rule for showing times it shares with the console).
 *
 *   <script src="https://chat.example/widget.js" data-workstream="ID"
 *           data-auth-function="getChatToken" async></script>
 *
 * The widget is a guest on someone else's page: everything lives in an IIFE, the only global is
 * window.PersistentChat, and the UI sits in a shadow root so host CSS cannot reach it.
 * The wire contract is docs/protocol.md.
 */
(function () {
  "use strict";

  // Every user-visible string. The English ones are what the tests look for.
  const STRINGS = {
    en: {
      open: "Open chat", close: "Close chat", chat: "Chat", minimize: "Minimize chat",
      messages: "Messages", message: "Message", placeholder: "Write a message…", send: "Send",
      you: "You", agent: "Agent", bot: "{name} (bot)", ended: "Conversation ended", earlier: "Load earlier messages",
      loading: "Loading…", loadFailed: "Could not load earlier messages.",
      connecting: "Connecting…", reconnecting: "Reconnecting…", tryAgain: "Try again",
      unread: "{n} unread messages",
      endChat: "End chat", endConfirm: "End this chat?", cancel: "Cancel",
      transcript: "Download transcript", newChat: "Start a new chat",
      errNoAuth: "Chat is not available on this page right now.",
      errToken: "We could not sign you in to the chat.",
      errTimeout: "Signing in to the chat took too long.",
      errRefused: "The chat did not accept your sign-in.",
      errOrigin: "The chat is not enabled for this website.",
      errWorkstream: "This chat is not available.", errGeneric: "The chat could not be started.",
      errUnreachable: "The chat cannot be reached right now.",
      erased: "Your chat history has been deleted.",
      away: "We are away right now and back {time}. You can still write: we will answer then.",
      awayNoTime: "We are away right now. You can still write: we will answer when we are back.",
      offline: "The chat is offline right now. We are back {time}.",
      offlineNoTime: "The chat is offline right now.",
      backAt: "We are back {time}.",
      notSent: "Not sent.", empty: "Not sent: the message is empty.",
      tooLong: "Not sent: the message is too long (4,000 characters at most).",
      sending: "Sending…", waiting: "Not sent yet: waiting for the connection.", retryNow: "Retry now",
      typing: "{name} is typing…",
      attach: "Attach files", remove: "Remove {name}", download: "Download {name}", closeImage: "Close image",
      upWaiting: "Waiting for the connection", upFailed: "Upload failed.", tooBig: "Too big.",
      badType: "This type of file cannot be sent.", refused: "The file was refused.", badImage: "The image cannot be used.",
      tooMany: "Too many files for one message.",
      rateQuestion: "How did we do?", rateScore: "{n} of 5", rateComment: "Anything to add? (optional)",
      rateSend: "Send rating", rateThanks: "Thank you for your rating!",
      rateChoose: "Choose a rating from 1 to 5 first.", rateFailed: "The rating could not be sent. Try again.",
    },
    fi: {
      open: "Avaa chat", close: "Sulje chat", chat: "Chat", minimize: "Pienennä chat",
      messages: "Viestit", message: "Viesti", placeholder: "Kirjoita viesti…", send: "Lähetä",
      you: "Sinä", agent: "Asiakaspalvelija", bot: "{name} (botti)", ended: "Keskustelu päättyi",
      earlier: "Lataa aiemmat viestit",
      loading: "Ladataan…", loadFailed: "Aiempia viestejä ei voitu ladata.",
      connecting: "Yhdistetään…", reconnecting: "Yhdistetään uudelleen…", tryAgain: "Yritä uudelleen",
      unread: "{n} lukematonta viestiä",
      endChat: "Lopeta chat", endConfirm: "Lopetetaanko chat?", cancel: "Peruuta",
      transcript: "Lataa keskustelu", newChat: "Aloita uusi chat",
      errNoAuth: "Chat ei ole juuri nyt käytettävissä tällä sivulla.",
      errToken: "Kirjautuminen chattiin epäonnistui.",
      errTimeout: "Kirjautuminen chattiin kesti liian kauan.",
      errRefused: "Chat ei hyväksynyt kirjautumistasi.",
      errOrigin: "Chat ei ole käytössä tällä sivustolla.",
      errWorkstream: "Tämä chat ei ole käytettävissä.",
      errGeneric: "Chattia ei voitu käynnistää.",
      errUnreachable: "Chattiin ei juuri nyt saada yhteyttä.",
      erased: "Keskusteluhistoriasi on poistettu.",
      away: "Emme ole paikalla juuri nyt, palaamme {time}. Voit silti kirjoittaa: vastaamme silloin.",
      awayNoTime: "Emme ole paikalla juuri nyt. Voit silti kirjoittaa: vastaamme, kun palaamme.",
      offline: "Chat ei ole juuri nyt auki. Palaamme {time}.",
      offlineNoTime: "Chat ei ole juuri nyt auki.",
      backAt: "Palaamme {time}.",
      notSent: "Ei lähetetty.", empty: "Ei lähetetty: viesti on tyhjä.",
      tooLong: "Ei lähetetty: viesti on liian pitkä (enintään 4 000 merkkiä).",
      sending: "Lähetetään…", waiting: "Ei vielä lähetetty: odotetaan yhteyttä.", retryNow: "Yritä nyt",
      typing: "{name} kirjoittaa…",
      attach: "Liitä tiedostoja", remove: "Poista {name}", download: "Lataa {name}", closeImage: "Sulje kuva",
      upWaiting: "Odotetaan yhteyttä", upFailed: "Lähetys epäonnistui.", tooBig: "Liian suuri.",
      badType: "Tämän tyyppistä tiedostoa ei voi lähettää.", refused: "Tiedosto hylättiin.",
      badImage: "Kuvaa ei voi käyttää.", tooMany: "Liian monta tiedostoa yhdessä viestissä.",
      rateQuestion: "Miten onnistuimme?", rateScore: "{n}/5", rateComment: "Haluatko kertoa lisää? (valinnainen)",
      rateSend: "Lähetä arvio", rateThanks: "Kiitos arviostasi!",
      rateChoose: "Valitse ensin arvio 1–5.", rateFailed: "Arviota ei voitu lähettää. Yritä uudelleen.",
    },
  };

  const TOKEN_TIMEOUT = 10000;
  const PING_EVERY = 25000;
  // No frame at all for this long means the socket is dead even if the browser has not noticed.
  const SILENCE_LIMIT = 2 * PING_EVERY + 10000;
  const BACKOFF_MIN = 500;
  // The first minute or so of failures retries at most every 6 s, so a short outage (of the chat
  // server, the network or the site's token backend) heals within seconds of ending; a long one
  // backs off to 30 s.
  const BACKOFF_SOON = 6000;
  const SOON_ATTEMPTS = 12;
  const BACKOFF_MAX = 30000;
  // A connection must survive this long before the backoff starts again from the bottom, so a
  // server that accepts and then drops every socket is not hammered twice a second.
  const STABLE_AFTER = 10000;
  // Browsers hide why a handshake failed (a refused origin looks like a network error), so a
  // widget that has never connected says so after this many tries instead of spinning quietly.
  const UNREACHABLE_AFTER = 4;
  const MAX_BODY = 4000;
  const PAGE = 50;
  const NEAR_BOTTOM = 80;
  const SLOT_WIDTH = 76;
  // A typing frame goes out at most this often while the customer types; the other side shows the
  // indicator until TYPING_SHOWN passes without a new one.
  const TYPING_EVERY = 3000;
  const TYPING_SHOWN = 6000;
  const EVENTS = ["ready", "open", "close", "message", "unread", "error"];
  const langOf = (tag) => (/^fi\b/i.test(tag || "") ? "fi" : "en");

  const CSS = `
:host { all: initial !important; }
:host([data-pc-hidden]) { display: none !important; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
.pc-root { --pc-accent: #2458d6; --pc-on-accent: #fff; --pc-bg: #fff; --pc-text: #1d2330;
  --pc-muted: #5f6b7d; --pc-bubble: #eef1f6; --pc-border: #dde2ea; color: var(--pc-text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
button, textarea { font: inherit; color: inherit; margin: 0; }
button { cursor: pointer; }
:focus-visible { outline: 3px solid #8fb0ff; outline-offset: 2px; }
svg { display: block; fill: none; stroke: currentColor; stroke-width: 2; stroke-linecap: round;
  stroke-linejoin: round; }
.pc-launcher { position: fixed; bottom: 20px; right: var(--pc-offset); z-index: 2147483000;
  width: 56px; height: 56px; padding: 0; border: 0; border-radius: 50%; display: flex;
  align-items: center; justify-content: center; background: var(--pc-accent); color: var(--pc-on-accent);
  box-shadow: 0 4px 14px rgba(16, 24, 40, .28); transition: transform .15s ease; }
.pc-left .pc-launcher, .pc-left .pc-panel { right: auto; left: var(--pc-offset); }
.pc-launcher:hover { transform: scale(1.06); }
.pc-launcher svg { width: 26px; height: 26px; }
.pc-launcher .pc-icon-close, .pc-open .pc-launcher .pc-icon-chat { display: none; }
.pc-open .pc-launcher .pc-icon-close { display: block; }
.pc-unread { position: absolute; top: -4px; right: -4px; min-width: 20px; height: 20px; padding: 0 6px;
  border-radius: 10px; background: #d92d20; color: #fff; font-size: 12px; font-weight: 600;
  line-height: 20px; text-align: center; }
.pc-stopped .pc-launcher::after { content: "!"; position: absolute; top: -4px; left: -4px; width: 20px;
  height: 20px; border-radius: 50%; background: #f79009; color: #fff; font: 700 13px/20px sans-serif; }
.pc-sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
.pc-panel { position: fixed; bottom: 88px; right: var(--pc-offset); z-index: 2147483001;
  width: 360px; height: 520px; max-width: calc(100vw - 24px); max-height: calc(100vh - 108px);
  display: flex; flex-direction: column; overflow: hidden; background: var(--pc-bg);
  border-radius: 14px; box-shadow: 0 12px 40px rgba(16, 24, 40, .24); }
.pc-header { display: flex; align-items: center; gap: 8px; padding: 12px 10px 12px 16px;
  background: var(--pc-accent); color: var(--pc-on-accent); }
.pc-heading { flex: 1; min-width: 0; }
.pc-avatar { flex: none; width: 32px; height: 32px; border-radius: 50%; display: flex; align-items: center;
  justify-content: center; background: rgba(255, 255, 255, .2); font-size: 13px; font-weight: 600; }
.pc-title, .pc-agent { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.pc-title { font-size: 15px; font-weight: 600; }
.pc-agent { font-size: 12px; opacity: .88; }
.pc-minimize { flex: none; width: 34px; height: 34px; padding: 0; border: 0; border-radius: 8px;
  display: flex; align-items: center; justify-content: center; background: transparent; }
.pc-minimize:hover { background: rgba(255, 255, 255, .16); }
.pc-minimize svg { width: 20px; height: 20px; }
.pc-error { margin: 12px 12px 0; padding: 10px 12px; border-radius: 10px; background: #fef3f2;
  color: #912018; border: 1px solid #fecdca; }
.pc-error p { margin: 0 0 8px; }
.pc-error button { padding: 4px 14px; border: 1px solid currentColor; border-radius: 8px; background: #fff; }
.pc-log { flex: 1; min-height: 0; overflow-y: auto; overscroll-behavior: contain; display: flex;
  flex-direction: column; gap: 6px; padding: 12px 14px; }
.pc-earlier { align-self: center; flex: none; margin-bottom: 6px; padding: 4px 14px; font-size: 13px;
  border: 1px solid var(--pc-border); border-radius: 999px; background: #fff; color: var(--pc-accent); }
.pc-earlier:disabled { opacity: .6; cursor: default; }
.pc-msg { position: relative; flex: none; display: flex; flex-direction: column; align-items: flex-start;
  align-self: flex-start; max-width: 82%; }
.pc-msg[data-sender="customer"] { align-self: flex-end; align-items: flex-end; }
.pc-msg[data-sender="system"] { align-self: center; align-items: center; max-width: 92%;
  text-align: center; }
.pc-sender { margin: 0 4px 2px; font-size: 12px; color: var(--pc-muted); }
.pc-body { padding: 8px 12px; border-radius: 14px; background: var(--pc-bubble);
  white-space: pre-wrap; overflow-wrap: anywhere; }
.pc-msg[data-sender="agent"] .pc-body, .pc-msg[data-sender="bot"] .pc-body { border-bottom-left-radius: 4px; }
.pc-msg[data-sender="customer"] .pc-body { background: var(--pc-accent); color: var(--pc-on-accent);
  border-bottom-right-radius: 4px; }
.pc-msg[data-sender="system"] .pc-body { padding: 2px 8px; background: none; font-size: 13px;
  font-style: italic; color: var(--pc-muted); }
.pc-time { margin: 2px 4px 0; font-size: 11px; color: var(--pc-muted); }
.pc-msg.pc-joined { margin-top: -3px; }
.pc-joined > .pc-sender, .pc-followed > .pc-time { position: absolute; width: 1px; height: 1px; margin: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.pc-state { display: flex; align-items: center; gap: 8px; margin: 2px 4px 0; font-size: 12px;
  color: var(--pc-muted); }
.pc-waiting .pc-state { color: #b42318; }
.pc-retry { padding: 0 8px; border: 1px solid currentColor; border-radius: 6px; background: #fff;
  font-size: 12px; }
.pc-body a { color: inherit; text-decoration: underline; }
.pc-greeting { padding: 14px 14px 0; } .pc-greeting p { margin: 0 0 6px; white-space: pre-wrap; }
.pc-reply-time { font-size: 12px; color: var(--pc-muted); }
.pc-typing { padding: 0 14px; font-size: 12px; font-style: italic; color: var(--pc-muted); }
.pc-typing:not(:empty) { padding: 4px 14px 0; }
.pc-msg.pc-failed .pc-body { background: #fef3f2; color: #912018; border: 1px solid #fecdca; }
.pc-note { margin: 2px 4px 0; font-size: 12px; color: #b42318; }
.pc-divider { flex: none; display: flex; align-items: center; gap: 10px; margin: 10px 0;
  font-size: 12px; color: var(--pc-muted); }
.pc-divider::before, .pc-divider::after { content: ""; flex: 1; border-top: 1px solid var(--pc-border); }
.pc-rating { flex: none; margin: 0 4px 10px; padding: 10px; border: 1px solid var(--pc-border); border-radius: 10px; }
.pc-rating fieldset { margin: 0; padding: 0; border: 0; }
.pc-rating legend { margin-bottom: 6px; font-weight: 600; }
.pc-rating-scores { display: flex; gap: 6px; }
.pc-rating-scores label { display: inline-flex; align-items: center; justify-content: center; min-width: 32px;
  min-height: 32px; border: 1px solid #667085; border-radius: 8px; cursor: pointer; }
.pc-rating-scores input { position: absolute; opacity: 0; width: 1px; height: 1px; }
.pc-rating-scores input:checked + span { font-weight: 700; }
.pc-rating-scores label:has(input:checked) { background: #1d2939; color: #fff; }
.pc-rating-scores label:has(input:focus-visible) { outline: 2px solid #1570ef; outline-offset: 2px; }
.pc-rating textarea { box-sizing: border-box; width: 100%; margin: 8px 0 6px; font: inherit; }
.pc-rating-send { padding: 6px 12px; border: 0; border-radius: 8px; background: #1d2939; color: #fff;
  font: inherit; cursor: pointer; }
.pc-rating-error { margin: 4px 0 0; font-size: 12px; color: #b42318; }
.pc-rating-thanks { flex: none; margin: 0 4px 10px; font-size: 13px; color: var(--pc-muted); text-align: center; }
.pc-end { flex: none; margin-right: 6px; padding: 6px 10px; border: 1px solid rgba(255, 255, 255, .7);
  border-radius: 8px; background: transparent; color: inherit; font: inherit; font-size: 13px; cursor: pointer; }
.pc-confirm, .pc-after { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; padding: 10px 14px;
  border-bottom: 1px solid var(--pc-border); font-size: 13px; }
.pc-confirm p { margin: 0; flex: 1 1 100%; }
.pc-confirm button, .pc-after button { padding: 6px 10px; border: 1px solid var(--pc-border); border-radius: 8px;
  background: #fff; color: #1f2937; font: inherit; cursor: pointer; }
.pc-confirm[hidden], .pc-after[hidden], .pc-end[hidden] { display: none; }
.pc-notice { margin: 0; padding: 8px 14px; font-size: 13px; background: #fff7e0; color: #4a3b00;
  border-bottom: 1px solid var(--pc-border); }
.pc-status { padding: 0 14px; font-size: 12px; color: var(--pc-muted); }
.pc-status:not(:empty) { padding: 4px 14px; }
.pc-compose { display: flex; align-items: flex-end; gap: 8px; padding: 10px 12px;
  border-top: 1px solid var(--pc-border); }
.pc-input { flex: 1; min-height: 38px; max-height: 120px; padding: 8px 10px; resize: none;
  border: 1px solid var(--pc-border); border-radius: 10px; background: #fff; outline: none; }
.pc-input:focus { border-color: var(--pc-accent); box-shadow: 0 0 0 3px rgba(36, 88, 214, .18); }
.pc-send { flex: none; width: 38px; height: 38px; padding: 0; border: 0; border-radius: 10px;
  display: flex; align-items: center; justify-content: center; background: var(--pc-accent);
  color: var(--pc-on-accent); }
.pc-send svg { width: 18px; height: 18px; }
.pc-clip { flex: none; width: 38px; height: 38px; padding: 0; border: 0; border-radius: 10px; display: flex;
  align-items: center; justify-content: center; background: transparent; color: var(--pc-muted); }
.pc-clip svg { width: 20px; height: 20px; }
.pc-tray { display: flex; flex-wrap: wrap; gap: 6px; padding: 0 12px; }
.pc-tray:not(:empty) { padding: 8px 12px 0; }
.pc-chip { display: flex; align-items: center; gap: 6px; max-width: 100%; padding: 3px 4px 3px 8px; font-size: 12px;
  border: 1px solid var(--pc-border); border-radius: 8px; background: #fff; color: var(--pc-text); }
.pc-chip span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.pc-chip progress { width: 50px; }
.pc-chip button { padding: 0 6px; border: 0; border-radius: 6px; background: var(--pc-bubble); font-size: 12px; }
.pc-chip.pc-bad { border-color: #fecdca; color: #912018; }
.pc-files { display: flex; flex-direction: column; align-items: inherit; gap: 4px; margin-top: 4px; }
.pc-thumb { padding: 0; border: 1px solid var(--pc-border); border-radius: 10px; overflow: hidden; background: #fff; }
.pc-thumb img { display: block; max-width: 200px; max-height: 160px; }
.pc-file { padding: 6px 10px; border-radius: 10px; background: var(--pc-bubble); color: var(--pc-text); }
.pc-file a { color: var(--pc-accent); font-weight: 600; overflow-wrap: anywhere; }
.pc-file small { display: block; color: var(--pc-muted); }
.pc-viewer { position: absolute; inset: 0; z-index: 2; display: flex; flex-direction: column; gap: 8px;
  padding: 12px; background: rgba(16, 24, 40, .92); color: #fff; }
.pc-viewer img { flex: 1; min-height: 0; object-fit: contain; }
.pc-viewer div { display: flex; justify-content: space-between; gap: 8px; }
.pc-viewer a { color: #fff; }
.pc-viewer button { padding: 4px 12px; border: 1px solid #fff; border-radius: 8px; background: transparent; color: #fff; }
.pc-drop .pc-log { outline: 3px dashed var(--pc-accent); outline-offset: -6px; }
@media (max-width: 480px) {
  .pc-panel, .pc-left .pc-panel { inset: 0; width: auto; height: auto; max-width: none;
    max-height: none; border-radius: 0; }
}
@media (prefers-reduced-motion: reduce) { .pc-launcher { transition: none; } }
`;

  // Static markup only: every piece of server or host data is set later with textContent.
  const ICON_CHAT = '<svg class="pc-icon-chat" viewBox="0 0 24 24" aria-hidden="true">' +
    '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.9A8 8 0 1 1 21 12z"/></svg>';
  const ICON_CLOSE = '<svg class="pc-icon-close" viewBox="0 0 24 24" aria-hidden="true">' +
    '<path d="M6 6l12 12M18 6L6 18"/></svg>';
  const ICON_MIN = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 9l6 6 6-6"/></svg>';
  const ICON_CLIP = '<svg viewBox="0 0 24 24" aria-hidden="true">' +
    '<path d="M21 11l-8.5 8.5a5 5 0 0 1-7-7L14 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 7"/></svg>';
  const ICON_SEND = '<svg viewBox="0 0 24 24" aria-hidden="true">' +
    '<path d="M4 12l16-8-6 16-2.5-6.5z"/></svg>';
  // Every refusal of the customer's token has a code starting "token_" (docs/protocol.md).
  const isTokenError = (code) => typeof code === "string" && code.indexOf("token_") === 0;
  // Refusals another try cannot fix: the page, the workstream or the site's keys must change first.
  // Everything else (timeouts, network, server_error, rate limits, an expired token) is retried.
  const isFinal = (code) => ["forbidden_origin", "unknown_workstream", "not_live"].indexOf(code) >= 0 ||
    (isTokenError(code) && code !== "token_expired" && code !== "token_not_yet_valid");
  // What a JWT looks like: a token function that passed on its backend's error page has no token.
  const JWT = /^[\w-]+\.[\w-]+\.[\w-]*$/;
  // For the site's developer: why their backend's token was refused (never the token itself).
  const logRefusal = (code, message) => {
    if (window.console) console.warn("Persistent Chat: the customer token was refused: " + code + ": " + message);
  };
  // Text goes in by key (data-t: text, data-t-label: aria-label, data-t-ph: placeholder), so
  // setLocale can relabel the live DOM without rebuilding it.
  const SKELETON = `
<div class="pc-panel" id="pc-panel" role="dialog" data-t-label="chat" hidden>
  <div class="pc-header">
    <div class="pc-avatar" aria-hidden="true" hidden></div>
    <div class="pc-heading"><div class="pc-title" data-t="chat"></div><div class="pc-agent" hidden></div></div>
    <button class="pc-end" type="button" data-t="endChat" hidden></button>
    <button class="pc-minimize" type="button" data-t-label="minimize">${ICON_MIN}</button>
  </div>
  <div class="pc-confirm" role="alertdialog" data-t-label="endConfirm" hidden><p data-t="endConfirm"></p>
    <button class="pc-confirm-end" type="button" data-t="endChat"></button>
    <button class="pc-confirm-cancel" type="button" data-t="cancel"></button></div>
  <div class="pc-after" hidden><button class="pc-transcript" type="button" data-t="transcript"></button>
    <button class="pc-new" type="button" data-t="newChat"></button></div>
  <div class="pc-error" role="alert" hidden><p></p><button type="button" data-t="tryAgain"></button></div>
  <div class="pc-greeting" hidden><p class="pc-greeting-text"></p><p class="pc-reply-time"></p></div>
  <div class="pc-log" role="log" aria-live="polite" data-t-label="messages" tabindex="0"></div>
  <p class="pc-notice" hidden></p>
  <div class="pc-typing" aria-hidden="true"></div>
  <div class="pc-status" role="status"></div>
  <div class="pc-tray"></div>
  <form class="pc-compose"><button class="pc-clip" type="button" data-t-label="attach">${ICON_CLIP}</button><input
    class="pc-pick" type="file" multiple hidden><textarea class="pc-input" rows="1" maxlength="${MAX_BODY}"
    data-t-label="message" data-t-ph="placeholder"></textarea><button
    class="pc-send" type="submit" data-t-label="send">${ICON_SEND}</button></form>
</div>
<button class="pc-launcher" type="button" aria-expanded="false"
  aria-controls="pc-panel" aria-describedby="pc-unread-text">${ICON_CHAT}${ICON_CLOSE}<span
  class="pc-unread" aria-hidden="true" hidden></span></button>
<span class="pc-sr" id="pc-unread-text"></span>`;

  // "auth.getToken" → window.auth.getToken, called with `this` = window.auth.
  function resolveFunction(path) {
    if (!path) return null;
    let parent = window;
    let value = window;
    for (const part of path.split(".")) {
      if (value == null) return null;
      parent = value;
      try { value = value[part]; } catch (e) { return null; }
    }
    return typeof value === "function" ? { fn: value, parent } : null;
  }

  class ChatError extends Error {
    constructor(code, text) { super(text || code); this.code = code; }
  }

  // The host function may call back, return a promise, or both; the first usable answer wins.
  function requestToken(path, t) {
    return new Promise((resolve, reject) => {
      const found = resolveFunction(path);
      if (!found) { reject(new ChatError("no_auth_function", t.errNoAuth)); return; }
      let settled = false;
      const finish = (token, error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!error && typeof token === "string" && JWT.test(token)) resolve(token);
        else reject(error || new ChatError("host_no_token", t.errToken));
      };
      const timer = setTimeout(() => finish(null, new ChatError("host_timeout", t.errTimeout)),
        TOKEN_TIMEOUT);
      try {
        const result = found.fn.call(found.parent, (token) => finish(token));
        if (result && typeof result.then === "function") {
          result.then((token) => finish(token), () => finish(null));
        } else if (typeof result === "string" && result) {
          finish(result);
        }
      } catch (e) {
        finish(null);
      }
    });
  }

  // The host page may block storage (privacy settings, sandboxed frames): the chat must work without it.
  const sessionStore = {
    get(key) { try { return window.sessionStorage.getItem(key); } catch (e) { return null; } },
    set(key, value) { try { window.sessionStorage.setItem(key, value); } catch (e) { /* kept in memory only */ } },
    remove(key) { try { window.sessionStorage.removeItem(key); } catch (e) { /* nothing stored */ } },
  };

  function newClientId() {
    const c = window.crypto;
    // randomUUID exists only in secure contexts; a plain-http host page still needs unique ids.
    if (c && typeof c.randomUUID === "function") return "c-" + c.randomUUID();
    const bytes = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // Only http and https become links, built node by node: message text is never parsed as HTML.
  const LINK = /\bhttps?:\/\/[^\s<>"']+/gi;
  function linkify(node, text) {
    node.textContent = "";
    let last = 0;
    for (const match of String(text).matchAll(LINK)) {
      const url = match[0].replace(/[.,;:!?)\]]+$/, "");
      let href = "";
      try { href = new URL(url).href; } catch (e) { continue; }
      const link = el("a", null, url);
      link.href = href;
      link.target = "_blank";
      link.rel = "noopener noreferrer nofollow";
      node.append(text.slice(last, match.index), link);
      last = match.index + url.length;
    }
    node.append(text.slice(last));
  }

  // "Ada Lovelace" → "AL"; by code point, so a name starting with an emoji is not cut in half.
  const initials = (name) => name.trim().split(/\s+/).slice(0, 2).map((w) => Array.from(w)[0] || "")
    .join("").toUpperCase();

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  // Python's isoformat gives microseconds; not every engine parses more than milliseconds.
  function parseTime(iso) {
    const date = new Date(String(iso || "").replace(/(\.\d{3})\d+/, "$1"));
    return isNaN(date) ? null : date;
  }

  // Messages from one sender a few minutes apart form a group (as in the console): the name shows on
  // its first, the time on its last; the others keep theirs for screen readers only.
  function sameGroup(earlier, later) {
    const sender = later.getAttribute("data-sender");
    if (sender === "system" || earlier.getAttribute("data-sender") !== sender) return false;
    const name = (node) => node.querySelector(".pc-sender").textContent;
    const time = (node) => parseTime(node.querySelector(".pc-time").getAttribute("datetime"));
    const [a, b] = [time(earlier), time(later)];
    return name(earlier) === name(later) && !!a && !!b && messageTime.grouped(a, b);
  }

  function groupMessages(nodes) {
    let previous = null;
    for (const node of nodes) {
      const message = node.classList.contains("pc-msg");
      const joined = message && !!previous && sameGroup(previous, node);
      node.classList.toggle("pc-joined", joined);
      if (previous) previous.classList.toggle("pc-followed", joined);
      previous = message ? node : null;
    }
    if (previous) previous.classList.remove("pc-followed");
  }

  // The highest seq up to which every message is held, counting from the oldest one held (older pages
  // come in on demand; that is not a gap). Acked sends whose message frame has not arrived yet are
  // provisional and do not count: a lower seq from someone else may still be on its way.
  function contiguous(rec) {
    let seq = minSeq(rec) - 1;
    for (let msg; (msg = rec.messages.get(seq + 1)) && !msg.provisional;) seq += 1;
    return Math.max(seq, 0);
  }

  function maxSeq(rec) {
    let max = 0;
    for (const seq of rec.messages.keys()) if (seq > max) max = seq;
    return max;
  }

  function minSeq(rec) {
    let min = 0;
    for (const seq of rec.messages.keys()) if (!min || seq < min) min = seq;
    return min;
  }

  // An email's link back ends in "#persistent-chat=WORKSTREAM.CONVERSATION.EXPIRES.SIGNATURE". The
  // widget of that workstream takes it (and removes it, so a reload does not open the chat again); the
  // server checks it for the customer the page has signed in before anything opens.
  function takeReturnLink(workstreamId) {
    const match = /(^#|&)persistent-chat=([A-Za-z0-9_.-]+)/.exec(location.hash);
    if (!match || match[2].split(".")[0] !== workstreamId) return null;
    const rest = location.hash.slice(1).replace(match[0].replace(/^#/, ""), "").replace(/^&|&$/g, "");
    try {
      history.replaceState(history.state, "", location.pathname + location.search + (rest ? "#" + rest : ""));
    } catch (e) { /* a sandboxed page may refuse; the link then opens the chat again on reload */ }
    return match[2];
  }

  function isComplete(rec) {
    return rec.complete || rec.messages.has(1) || !rec.conv.last_seq;
  }

  class Widget {
    constructor(script, slot, emit, locale) {
      this.id = script.getAttribute("data-workstream");
      this.origin = new URL(script.src, location.href).origin;
      this.authPath = script.getAttribute("data-auth-function") || "";
      this.side = script.getAttribute("data-position") === "left" ? "left" : "right";
      // The embed's own data-position wins over the side set on the admin page.
      this.fixedSide = script.hasAttribute("data-position");
      this.slot = slot;
      this.sound = script.getAttribute("data-sound") === "on";
      // data-locale overrides the page's language; it also picks the time format.
      this.localeTag = locale || script.getAttribute("data-locale") || document.documentElement.lang || undefined;
      this.lang = langOf(this.localeTag);
      this.t = STRINGS[this.lang];
      this.emit = (name, detail) => emit(name, Object.assign({ workstream: this.id }, detail));

      this.conversations = new Map(); // id → {conv, messages: Map(seq → Message), complete}
      this.nodes = new Map(); // "cid:seq" or "d:cid" → element, reused across renders
      this.locals = []; // nodes of sends not yet acknowledged, oldest first
      this.failedSends = []; // {node, after}: shown after the node that was last when they failed
      this.outbox = new Map(); // client_id → {client_id, body, node, created_at}
      // What we know below the oldest held conversation: {before, conv}: conv is the next older one,
      // or null when none exists below `before`.
      this.older = null;
      this.epoch = 0; // bumped by a reset so answers to stale HTTP requests are ignored
      this.unread = new Set(); // "cid:seq" of agent and system messages not seen yet
      this.unreadShown = 0;
      this.isOpen = false;
      this.startOpen = false; // open() or close() called before the widget was mounted
      this.ws = null;
      this.gen = 0; // bumped per connection attempt; late callbacks of older attempts are ignored
      this.attempt = 0; // consecutive failed connections, for the backoff
      this.welcomed = false; // on the current socket
      this.ready = false; // backlog received on the current socket: sends may go out
      this.token = null;
      this.returnLink = takeReturnLink(this.id);
      this.connStatus = "";
      this.note = "";
      this.ratedHere = new Set(); // conversations rated on this page: they say thanks instead of asking
    }

    // ---- DOM ---------------------------------------------------------------------------------

    mount() {
      const host = document.createElement("div");
      host.setAttribute("data-persistent-chat", this.id);
      const shadow = host.attachShadow({ mode: "open" });
      this.host = host;
      this.shadow = shadow;
      try {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        shadow.adoptedStyleSheets = [sheet];
      } catch (e) {
        shadow.appendChild(el("style", null, CSS));
      }
      const root = el("div", "pc-root pc-" + this.side);
      root.style.setProperty("--pc-offset", 20 + this.slot * SLOT_WIDTH + "px");
      root.innerHTML = SKELETON;
      shadow.appendChild(root);
      this.root = root;

      const $ = (sel) => root.querySelector(sel);
      [this.launcher, this.badge, this.unreadText, this.panel, this.title, this.agent, this.errorBox,
        this.log, this.status, this.input, this.notice, this.typing] = [".pc-launcher", ".pc-unread", ".pc-sr",
        ".pc-panel", ".pc-title", ".pc-agent", ".pc-error", ".pc-log", ".pc-status", ".pc-input", ".pc-notice",
        ".pc-typing"].map($);
      this.greeting = $(".pc-greeting");
      // Lives inside the log so it scrolls away with the oldest messages.
      this.earlierButton = el("button", "pc-earlier");
      this.earlierButton.type = "button";
      this.earlierButton.setAttribute("data-t", "earlier");
      this.earlierButton.hidden = true;
      this.log.appendChild(this.earlierButton);

      this.launcher.addEventListener("click", () => { this.unlockSound(); this.toggle(); });
      $(".pc-minimize").addEventListener("click", () => this.close());
      // Live chat only (the server says so in welcome): either side may end it.
      [this.endButton, this.confirmBox, this.afterBox] = [".pc-end", ".pc-confirm", ".pc-after"].map($);
      this.endButton.addEventListener("click", () => {
        this.confirmBox.hidden = false;
        $(".pc-confirm-cancel").focus();
      });
      $(".pc-confirm-cancel").addEventListener("click", () => {
        this.confirmBox.hidden = true;
        this.endButton.focus();
      });
      $(".pc-confirm-end").addEventListener("click", () => {
        this.confirmBox.hidden = true;
        const newest = this.newest();
        if (newest) this.send({ type: "end", conversation_id: newest.conv.id });
      });
      $(".pc-transcript").addEventListener("click", () => this.downloadTranscript());
      $(".pc-new").addEventListener("click", () => {
        this.afterBox.hidden = true;
        this.input.focus();
      });
      $(".pc-error button").addEventListener("click", () => this.retry());
      this.earlierButton.addEventListener("click", () => this.loadEarlier());
      this.panel.addEventListener("keydown", (e) => {
        if (e.key === "Escape") { e.preventDefault(); this.close(); }
      });
      this.input.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.submit(); }
      });
      this.input.addEventListener("input", () => { this.autosize(); this.typed(); });
      $(".pc-compose").addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });

      // Waiting out the backoff after the network is back would leave queued sends sitting there.
      // A token request made while offline may hang until its timeout: back online, ask afresh.
      window.addEventListener("online", () => {
        if (!this.ready && !this.stopped && !this.deferred) { this.tokenPromise = null; this.retry(); }
      });
      window.addEventListener("offline", () => { if (this.ws) this.lost(); });
      document.addEventListener("visibilitychange", () => this.markRead());
      // An open socket keeps the host page out of the back/forward cache; let go while hidden.
      window.addEventListener("pagehide", (e) => { if (e.persisted) this.disconnect(); });
      window.addEventListener("pageshow", (e) => { if (e.persisted && !this.stopped && !this.deferred) this.connect(); });

      this.mountFiles($);
      this.applyStrings();
      document.body.appendChild(host);
      // An anonymous visitor's token, storage entry and customer row come with their first open of the
      // chat, not with a page view: the launcher needs none of them.
      if (this.authPath || sessionStore.get(this.visitorKey())) this.connect();
      else this.preview();
      this.emit("ready");
      if (this.startOpen) this.open();
    }

    applyStrings() {
      const t = this.t;
      for (const node of this.root.querySelectorAll("[data-t]")) node.textContent = t[node.getAttribute("data-t")];
      for (const node of this.root.querySelectorAll("[data-t-label]")) {
        node.setAttribute("aria-label", t[node.getAttribute("data-t-label")]);
      }
      this.input.placeholder = t.placeholder;
      this.launcher.setAttribute("aria-label", this.isOpen ? t.close : t.open);
      this.updateBadge();
    }

    setLocale(code) {
      const before = this.t;
      this.localeTag = String(code);
      this.lang = langOf(this.localeTag);
      this.t = STRINGS[this.lang];
      if (!this.root) return;
      this.applyStrings();
      // Texts already shown (status, error) are found by their value in the old catalogue.
      const again = (text) => {
        const key = Object.keys(before).find((k) => before[k] === text);
        return key ? this.t[key] : text;
      };
      const error = this.errorBox.querySelector("p");
      error.textContent = again(error.textContent);
      this.connStatus = again(this.connStatus);
      this.note = again(this.note);
      this.setStatus();
      for (const rec of this.conversations.values()) {
        for (const msg of rec.messages.values()) this.fillMessage(this.nodeFor(msg), msg);
        const divider = this.nodes.get("d:" + rec.conv.id);
        if (divider) divider.textContent = this.t.ended;
      }
      for (const entry of this.outbox.values()) {
        entry.node.querySelector(".pc-sender").textContent = this.t.you;
      }
      this.showPending();
      this.updateHeader();
      if (this.workstream) this.showHours(this.hours);
      const locale = this.wireLocale();
      if (locale) this.send({ type: "locale", locale });
    }

    // The locale picks the language of the automated messages the server writes for this customer.
    // A page's odd lang attribute must not cost it the chat: the server refuses what is not a language tag.
    wireLocale() {
      return /^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$/.test(this.localeTag || "") ? this.localeTag : undefined;
    }

    // Throttled: the agent's console shows the indicator for TYPING_SHOWN after each frame.
    typed() {
      const now = Date.now();
      if (!this.ready || !this.input.value.trim() || now - (this.typingSentAt || 0) < TYPING_EVERY) return;
      this.typingSentAt = now;
      this.send({ type: "typing" });
    }

    showTyping(name) {
      clearTimeout(this.typingTimer);
      this.typing.textContent = name ? this.t.typing.replace("{name}", name) : "";
      if (name) this.typingTimer = setTimeout(() => this.showTyping(null), TYPING_SHOWN);
    }

    // Opening the panel in a visible tab reads everything; the server relays the marker to the
    // customer's other tabs and devices so their unread counts clear too.
    markRead() {
      if (!this.isOpen || document.visibilityState === "hidden") return;
      this.setUnread(() => true);
      const newest = this.cursor();
      const key = newest.conversation_id + ":" + newest.after;
      if (!newest.after || !this.ready || this.readSent === key) return;
      this.readSent = key;
      this.send({ type: "read", conversation_id: newest.conversation_id, seq: newest.after });
    }

    onRead(frame) {
      const cid = frame.conversation_id;
      this.setUnread((key) => {
        const [c, seq] = key.split(":").map(Number);
        return c < cid || (c === cid && seq <= frame.seq);
      });
    }

    setUnread(isRead) {
      const before = this.unread.size;
      for (const key of this.unread) if (isRead(key)) this.unread.delete(key);
      if (this.unread.size !== before) this.updateBadge();
    }

    // Unacknowledged sends say whether they are on their way or waiting for the connection.
    showPending() {
      for (const entry of this.outbox.values()) {
        entry.node.classList.toggle("pc-waiting", !this.ready);
        entry.state.firstChild.textContent = this.ready ? this.t.sending : this.t.waiting;
        entry.state.lastChild.textContent = this.t.retryNow;
        entry.state.lastChild.hidden = this.ready;
      }
    }

    // Browsers only let a page make sound after a user gesture: the audio context is created on the
    // customer's first click on the launcher, and until then new messages are silent.
    unlockSound() {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (this.sound && !this.audio && Context) this.audio = new Context();
    }

    chime() {
      if (!this.audio) return;
      const osc = this.audio.createOscillator();
      const gain = this.audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.05;
      osc.connect(gain).connect(this.audio.destination);
      osc.start();
      osc.stop(this.audio.currentTime + 0.15);
    }

    autosize() {
      this.input.style.height = "auto";
      this.input.style.height = Math.min(this.input.scrollHeight + 2, 120) + "px";
    }

    open() {
      if (!this.panel) { this.startOpen = true; return; }
      if (this.isOpen) return;
      if (this.deferred) { this.deferred = false; this.connect(); }
      this.isOpen = true;
      this.root.classList.add("pc-open");
      this.panel.hidden = false;
      this.launcher.setAttribute("aria-label", this.t.close);
      this.launcher.setAttribute("aria-expanded", "true");
      this.render({ bottom: true });
      this.input.focus();
      this.markRead();
      this.probeOlder();
      this.emit("open");
    }

    close() {
      if (!this.panel) { this.startOpen = false; return; }
      if (!this.isOpen) return;
      const hadFocus = this.shadow.activeElement && this.panel.contains(this.shadow.activeElement);
      this.isOpen = false;
      this.root.classList.remove("pc-open");
      this.panel.hidden = true;
      this.launcher.setAttribute("aria-label", this.t.open);
      this.launcher.setAttribute("aria-expanded", "false");
      if (hadFocus) this.launcher.focus();
      this.emit("close");
    }

    toggle() {
      if (this.isOpen || (!this.panel && this.startOpen)) this.close();
      else this.open();
    }

    updateBadge() {
      const n = this.unread.size;
      this.badge.hidden = n === 0;
      this.badge.textContent = n > 99 ? "99+" : String(n);
      this.unreadText.textContent = n ? this.t.unread.replace("{n}", n) : "";
      if (n !== this.unreadShown) {
        this.unreadShown = n;
        this.emit("unread", { count: n });
      }
    }

    setStatus(connStatus, note) {
      if (connStatus !== undefined) this.connStatus = connStatus;
      if (note !== undefined) {
        this.note = note;
        clearTimeout(this.noteTimer);
        if (note) this.noteTimer = setTimeout(() => this.setStatus(undefined, ""), 6000);
      }
      const text = this.note || this.connStatus;
      if (this.status && this.status.textContent !== text) this.status.textContent = text;
    }

    showError(text) {
      this.errorBox.querySelector("p").textContent = text;
      this.errorBox.hidden = false;
      this.emit("error", { message: text });
    }

    // Outside operating hours a persistent chat still takes messages; the customer is told when the
    // team is back, in their own time zone.
    // A live chat is real time: outside hours it shows its offline state (input off), or no widget at
    // all when the workstream says so.
    showHours(hours) {
      this.hours = hours;
      const away = !!hours && hours.open === false;
      const offline = away && this.workstream.mode === "live";
      // Set inside the shadow's own :host rule: its !important outranks the host page's styles.
      this.host.toggleAttribute("data-pc-hidden", offline && !!this.workstream.hide_when_closed);
      this.input.disabled = offline;
      this.root.querySelector(".pc-send").disabled = offline;
      this.notice.hidden = !away;
      if (!away) return;
      const date = parseTime(hours.opens_at);
      const when = date ? messageTime.weekday(date, this.localeTag) : "";
      if (hours.message) {
        // The workstream's own out-of-hours or holiday text, already in this page's language.
        this.notice.textContent = hours.message + (when ? " " + this.t.backAt.replace("{time}", when) : "");
        return;
      }
      const [withTime, withoutTime] = offline ? [this.t.offline, this.t.offlineNoTime] : [this.t.away, this.t.awayNoTime];
      this.notice.textContent = when ? withTime.replace("{time}", when) : withoutTime;
    }

    formatTime(iso) {
      const date = parseTime(iso);
      return date ? messageTime.text(date, this.localeTag) : "";
    }

    messageNode(sender) {
      const node = el("div", "pc-msg");
      node.setAttribute("data-sender", sender);
      if (sender !== "system") node.appendChild(el("span", "pc-sender"));
      node.appendChild(el("div", "pc-body"));
      node.appendChild(el("time", "pc-time"));
      return node;
    }

    fillMessage(node, msg) {
      if (msg.conversation_id != null) node.setAttribute("data-conversation", msg.conversation_id);
      if (msg.seq != null) node.setAttribute("data-seq", msg.seq);
      const sender = node.querySelector(".pc-sender");
      if (sender) {
        const name = msg.sender_name || this.t.agent;
        // A bot says that it is one, in words.
        sender.textContent = msg.sender === "customer" ? this.t.you
          : msg.sender === "bot" ? this.t.bot.replace("{name}", name) : name;
      }
      linkify(node.querySelector(".pc-body"), msg.body);
      this.showFiles(node, msg);
      const time = node.querySelector(".pc-time");
      time.textContent = this.formatTime(msg.created_at);
      time.setAttribute("datetime", msg.created_at || "");
    }

    nodeFor(msg) {
      const key = msg.conversation_id + ":" + msg.seq;
      let node = this.nodes.get(key);
      if (!node) {
        node = this.messageNode(msg.sender);
        this.fillMessage(node, msg);
        this.nodes.set(key, node);
      }
      return node;
    }

    dividerFor(cid) {
      const key = "d:" + cid;
      let node = this.nodes.get(key);
      if (!node) {
        node = el("div", "pc-divider", this.t.ended);
        node.setAttribute("role", "separator");
        this.nodes.set(key, node);
      }
      return node;
    }

    // ---- CSAT: the rating asked below the "Conversation ended" divider; writing again is never blocked

    ratingFor(conv) {
      const key = "r:" + conv.id;
      const state = conv.rating_wanted ? "ask" : conv.rating && this.ratedHere.has(conv.id) ? "thanks" : null;
      if (!state) return null;
      let node = this.nodes.get(key);
      if (!node || node.dataset.state !== state) {
        node = state === "ask" ? this.ratingForm(conv.id) : el("p", "pc-rating-thanks", this.t.rateThanks);
        if (state === "thanks") node.setAttribute("role", "status");
        node.dataset.state = state;
        this.nodes.set(key, node);
      }
      return node;
    }

    ratingForm(cid) {
      const form = el("form", "pc-rating");
      const set = el("fieldset");
      set.appendChild(el("legend", null, this.t.rateQuestion));
      const scores = el("div", "pc-rating-scores");
      for (let n = 1; n <= 5; n++) {
        const label = el("label");
        const input = el("input");
        input.type = "radio";
        input.name = "pc-score-" + cid;
        input.value = String(n);
        input.setAttribute("aria-label", this.t.rateScore.replace("{n}", n));
        label.append(input, el("span", null, String(n)));
        scores.appendChild(label);
      }
      set.appendChild(scores);
      const comment = el("textarea");
      comment.rows = 2;
      comment.maxLength = 1000;
      comment.setAttribute("aria-label", this.t.rateComment);
      comment.placeholder = this.t.rateComment;
      const send = el("button", "pc-rating-send", this.t.rateSend);
      send.type = "submit";
      const error = el("p", "pc-rating-error");
      error.setAttribute("role", "alert");
      form.append(set, comment, send, error);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.sendRating(cid, form, error);
      });
      return form;
    }

    async sendRating(cid, form, error) {
      const chosen = form.querySelector("input:checked");
      if (!chosen) {
        error.textContent = this.t.rateChoose;
        return;
      }
      const button = form.querySelector("button");
      button.disabled = true;
      error.textContent = "";
      const url = this.origin + "/api/widget/workstreams/" + encodeURIComponent(this.id) +
        "/conversations/" + cid + "/rating";
      try {
        const res = await fetch(url, {
          method: "POST", credentials: "omit",
          headers: { Authorization: "Bearer " + (await this.getToken(false)), "Content-Type": "application/json" },
          body: JSON.stringify({ score: Number(chosen.value), comment: form.querySelector("textarea").value }),
        });
        const data = await res.json().catch(() => ({}));
        // Already rated (on another device) counts as done too.
        if (res.ok || (data.error && data.error.code === "already_rated")) {
          this.ratedHere.add(cid);
          const rec = this.conversations.get(cid);
          if (rec) rec.conv = Object.assign({}, rec.conv, { rating_wanted: false, rating: data.rating || rec.conv.rating || {} });
          this.render();
          return;
        }
        error.textContent = this.t.rateFailed;
      } catch {
        error.textContent = this.t.rateFailed;
      }
      button.disabled = false;
    }

    sortedConversations() {
      return Array.from(this.conversations.values()).sort((a, b) => a.conv.id - b.conv.id);
    }

    oldest() { return this.sortedConversations()[0] || null; }

    newest() { return this.sortedConversations().pop() || null; }

    // The model changes freely; only render() touches the log, so scroll anchoring is exact.
    render(opts = {}) {
      if (!this.log) return;
      const log = this.log;
      const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM;
      const fromBottom = log.scrollHeight - log.scrollTop;
      const wanted = [];
      const anchored = new Map();
      for (const f of this.failedSends) anchored.set(f.after, (anchored.get(f.after) || []).concat(f.node));
      const add = (node) => {
        wanted.push(node);
        const followers = anchored.get(node);
        anchored.delete(node);
        if (followers) followers.forEach(add);
      };
      const convs = this.sortedConversations();
      convs.forEach((rec, i) => {
        const seqs = Array.from(rec.messages.keys()).sort((a, b) => a - b);
        for (const seq of seqs) add(this.nodeFor(rec.messages.get(seq)));
        if (i < convs.length - 1 || rec.conv.ended) add(this.dividerFor(rec.conv.id));
        const rating = i === convs.length - 1 ? this.ratingFor(rec.conv) : null;
        if (rating) add(rating);
      });
      // Failed sends whose anchor is gone (a reset) go to the end.
      for (const followers of anchored.values()) followers.forEach(add);
      this.tail = wanted[wanted.length - 1] || null;
      wanted.push(...this.locals);
      groupMessages(wanted);

      // Move nodes only where they differ, so an append touches just the new tail.
      let cursor = this.earlierButton.nextSibling;
      for (const node of wanted) {
        if (node === cursor) cursor = cursor.nextSibling;
        else log.insertBefore(node, cursor);
      }
      while (cursor) {
        const next = cursor.nextSibling;
        cursor.remove();
        cursor = next;
      }

      const oldest = this.oldest();
      this.earlierButton.hidden = !oldest || (isComplete(oldest) && this.olderState(oldest) === "none");
      this.updateHeader();

      if (opts.prepend) log.scrollTop = log.scrollHeight - fromBottom;
      else if (opts.bottom || nearBottom) log.scrollTop = log.scrollHeight;
    }

    // The look set on the admin page, from welcome: accent, launcher side, texts per language.
    applyAppearance() {
      const look = this.appearance;
      if (!look) return;
      const colour = (value) => /^#[0-9a-f]{6}$/i.test(value || "");
      if (colour(look.accent)) this.root.style.setProperty("--pc-accent", look.accent);
      if (colour(look.accent_text)) this.root.style.setProperty("--pc-on-accent", look.accent_text);
      const side = look.position === "left" ? "left" : "right";
      if (!this.fixedSide && side !== this.side) {
        this.root.classList.replace("pc-" + this.side, "pc-" + side);
        this.side = side;
      }
    }

    lookText(field) {
      const texts = (this.appearance && this.appearance.texts) || {};
      return (texts[this.lang] || {})[field] || (texts.en || {})[field] || "";
    }

    updateHeader() {
      const title = this.lookText("title") || (this.workstream && this.workstream.name);
      if (title) this.title.textContent = title;
      // An empty panel greets instead of showing nothing.
      const greeting = this.lookText("greeting");
      const replyTime = this.lookText("reply_time");
      this.greeting.querySelector(".pc-greeting-text").textContent = greeting;
      this.greeting.querySelector(".pc-reply-time").textContent = replyTime;
      this.greeting.hidden = !(greeting || replyTime) || this.conversations.size > 0 || this.locals.length > 0;
      const newest = this.newest();
      const name = newest && !newest.conv.ended ? newest.conv.agent_name : null;
      this.agent.hidden = !name;
      this.agent.textContent = name || "";
      const avatar = this.root.querySelector(".pc-avatar");
      avatar.hidden = !name;
      avatar.textContent = initials(name || "");
      const canEnd = !!(this.workstream && this.workstream.customer_can_end);
      const ended = !!(newest && newest.conv.ended);
      this.endButton.hidden = !(canEnd && newest && !ended);
      if (this.endButton.hidden) this.confirmBox.hidden = true;
      if (!(canEnd && ended)) this.afterBox.hidden = true;
      else if (this.afterFor !== newest.conv.id) {
        this.afterFor = newest.conv.id;
        this.afterBox.hidden = false;
      }
    }

    async downloadTranscript() {
      const newest = this.newest();
      if (!newest) return;
      const url = this.origin + "/api/widget/workstreams/" + encodeURIComponent(this.id) +
        "/conversations/" + newest.conv.id + "/transcript";
      const res = await fetch(url, {
        headers: { Authorization: "Bearer " + (await this.getToken(false)) }, credentials: "omit",
      });
      if (!res.ok) return;
      const link = el("a");
      link.href = URL.createObjectURL(await res.blob());
      link.download = "chat-" + newest.conv.id + ".txt";
      this.root.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    }

    // ---- model -------------------------------------------------------------------------------

    // complete is only trusted for conversations we did not hold yet: the widget may already
    // hold older pages than the server assumes.
    upsertConversation(conv, complete) {
      let rec = this.conversations.get(conv.id);
      if (rec) {
        rec.conv = Object.assign({}, rec.conv, conv);
      } else {
        rec = { conv: Object.assign({}, conv), messages: new Map(), complete: !!complete };
        this.conversations.set(conv.id, rec);
      }
      return rec;
    }

    recordFor(cid) {
      return this.conversations.get(cid) ||
        this.upsertConversation({ id: cid, ended: false, agent_name: null, last_seq: 0 }, false);
    }

    // Returns true when the message is new to us.
    addMessage(msg, countUnread) {
      const rec = this.recordFor(msg.conversation_id);
      const existing = rec.messages.get(msg.seq);
      if (existing && !existing.provisional) return false;
      const key = msg.conversation_id + ":" + msg.seq;
      let node = this.nodes.get(key);
      const pending = msg.client_id && this.outbox.get(msg.client_id);
      if (pending) {
        // Our own send came back before (or instead of) its ack: adopt the optimistic node.
        this.forgetLocal(pending);
        if (node && node !== pending.node) node.remove();
        node = pending.node;
        node.classList.remove("pc-pending");
        this.nodes.set(key, node);
      }
      rec.messages.set(msg.seq, msg);
      if (msg.seq > (rec.conv.last_seq || 0)) rec.conv.last_seq = msg.seq;
      if (node) this.fillMessage(node, msg);
      if (!existing && countUnread && !this.isOpen && msg.sender !== "customer") {
        this.unread.add(key);
        this.updateBadge();
        this.chime();
      }
      return !existing;
    }

    forgetLocal(entry) {
      this.outbox.delete(entry.client_id);
      entry.state.remove();
      const i = this.locals.indexOf(entry.node);
      if (i >= 0) this.locals.splice(i, 1);
    }

    clear() {
      this.conversations.clear();
      this.nodes.clear();
      this.older = null;
      this.epoch += 1;
    }

    // Where the hello resumes: the newest conversation's contiguous end, so a message missed live is
    // in the backlog.
    cursor() {
      const convs = this.sortedConversations().reverse();
      for (const rec of convs) {
        const seq = contiguous(rec);
        if (seq) return { conversation_id: rec.conv.id, after: seq };
      }
      return { conversation_id: null, after: 0 };
    }

    // A held message above a hole (a live event this server missed): fetch what lies between.
    async fillGap(rec) {
      if (rec.filling || !this.ready) return;
      rec.filling = true;
      try {
        for (let after; (after = contiguous(rec)) < maxSeq(rec);) {
          const data = await this.api("/conversations/" + rec.conv.id + "/messages?after=" + after + "&limit=100");
          if (this.conversations.get(rec.conv.id) !== rec) return;
          const messages = data.messages || [];
          for (const msg of messages) this.onMessage(msg);
          if (!messages.length) return;
        }
      } catch (e) {
        // The next message or reconnect tries again.
      } finally {
        rec.filling = false;
      }
    }

    // ---- token and HTTP ----------------------------------------------------------------------

    // A page without a token function is an anonymous visitor of a live workstream: the server issues
    // the token, kept for this browser session under a key of this workstream's own, so a reload
    // continues the same chat. "fresh" does not replace it: only a refusal does.
    visitorKey() { return "persistent-chat:" + this.id + ":visitor"; }

    visitorToken() {
      const key = this.visitorKey();
      if (this.visitorRefused) { sessionStore.remove(key); this.visitorRefused = false; }
      const stored = sessionStore.get(key);
      if (stored) return Promise.resolve(stored);
      const url = this.origin + "/api/widget/workstreams/" + encodeURIComponent(this.id) + "/visitors";
      return fetch(url, { method: "POST", credentials: "omit", cache: "no-store" }).then(async (res) => {
        let body = null;
        try { body = await res.json(); } catch (e) { /* not our JSON */ }
        if (!res.ok || !body || !body.token) {
          const code = (body && body.error && body.error.code) || "http_" + res.status;
          throw new ChatError(code, code === "not_live" ? this.t.errNoAuth : this.t.errGeneric);
        }
        sessionStore.set(key, body.token);
        return body.token;
      });
    }

    // Before the first open: the workstream and its hours (a live chat outside hours may hide its
    // launcher), asked without a token, so nothing is stored about the visitor.
    async preview() {
      this.deferred = true;
      const locale = this.wireLocale();
      const url = this.origin + "/api/widget/workstreams/" + encodeURIComponent(this.id) + "/preview" +
        (locale ? "?locale=" + encodeURIComponent(locale) : "");
      try {
        const res = await fetch(url, { credentials: "omit", cache: "no-store" });
        const data = res.ok ? await res.json() : null;
        if (!data || !this.deferred) return;
        this.workstream = data.workstream || {};
        this.showHours(data.hours);
        this.updateHeader();
      } catch (e) {
        // The first open connects and learns all of it from the welcome.
      }
    }

    // A request dropped by retry() may still answer later; it must not clear its successor.
    getToken(fresh) {
      if (!fresh && this.token) return Promise.resolve(this.token);
      if (!this.tokenPromise) {
        const source = this.authPath ? requestToken(this.authPath, this.t) : this.visitorToken();
        const request = source.then(
          (token) => { if (this.tokenPromise === request) this.tokenPromise = null; this.token = token; return token; },
          (error) => { if (this.tokenPromise === request) this.tokenPromise = null; throw error; });
        this.tokenPromise = request;
      }
      return this.tokenPromise;
    }

    async api(path, retried) {
      const token = await this.getToken(!!retried);
      const url = this.origin + "/api/widget/workstreams/" + encodeURIComponent(this.id) + path;
      const res = await fetch(url, {
        headers: { Authorization: "Bearer " + token },
        credentials: "omit",
        cache: "no-store",
      });
      if (res.ok) return res.json();
      let code = "http_" + res.status;
      let message = "";
      try {
        const error = (await res.json()).error;
        code = error.code || code;
        message = error.message || "";
      } catch (e) { /* not our JSON */ }
      if (isTokenError(code)) logRefusal(code, message);
      if (!retried && isTokenError(code)) {
        this.visitorRefused = !this.authPath;
        this.token = null;
        return this.api(path, true);
      }
      throw new ChatError(code);
    }

    olderState(oldest) {
      const older = this.older;
      if (!older) return "unknown";
      if (!older.conv) return oldest.conv.id <= older.before ? "none" : "unknown";
      return older.before === oldest.conv.id ? "some" : "unknown";
    }

    // Asks whether a conversation older than the oldest held one exists, so the button is honest.
    async probeOlder() {
      const oldest = this.oldest();
      if (!oldest || !isComplete(oldest) || this.probing || this.olderState(oldest) !== "unknown") return;
      this.probing = true;
      const epoch = this.epoch;
      try {
        const data = await this.api("/conversations?before=" + oldest.conv.id + "&limit=1");
        if (epoch !== this.epoch) return;
        this.older = { before: oldest.conv.id, conv: (data.conversations || [])[0] || null };
        this.render();
      } catch (e) {
        // Leave the button visible; a click retries.
      } finally {
        this.probing = false;
      }
    }

    async loadEarlier() {
      if (this.loadingEarlier) return;
      this.loadingEarlier = true;
      this.earlierButton.disabled = true;
      this.setStatus(undefined, this.t.loading);
      const epoch = this.epoch;
      let failed = false;
      try {
        let rec = this.oldest();
        if (rec && isComplete(rec)) {
          const state = this.olderState(rec);
          let conv = state === "some" ? this.older.conv : null;
          if (state === "unknown") {
            const data = await this.api("/conversations?before=" + rec.conv.id + "&limit=1");
            conv = (data.conversations || [])[0] || null;
          }
          if (epoch !== this.epoch) return;
          this.older = { before: rec.conv.id, conv };
          rec = conv ? this.upsertConversation(conv, false) : null;
        }
        if (rec && !isComplete(rec)) {
          const before = minSeq(rec) || (rec.conv.last_seq || 0) + 1;
          const data = await this.api("/conversations/" + rec.conv.id + "/messages?before=" + before +
            "&limit=" + PAGE);
          if (epoch !== this.epoch) return;
          const messages = data.messages || [];
          for (const msg of messages) this.addMessage(msg, false);
          if (!messages.length) rec.complete = true;
        }
      } catch (e) {
        failed = true;
      } finally {
        this.loadingEarlier = false;
        this.earlierButton.disabled = false;
        this.setStatus(undefined, failed ? this.t.loadFailed : "");
        this.render({ prepend: true });
      }
      if (!failed) this.probeOlder();
    }

    // ---- websocket ---------------------------------------------------------------------------

    // A token held from an earlier hello is used again: a reconnect then needs nothing from the page,
    // whose backend may be down too. Only a refusal (or an expiry) asks the page for a new one.
    async connect() {
      clearTimeout(this.retryTimer);
      this.dropSocket();
      const gen = ++this.gen;
      this.stopped = false;
      this.backlogging = false;
      this.setStatus(this.everWelcomed || this.attempt ? this.t.reconnecting : this.t.connecting);
      let token;
      try {
        token = await this.getToken(false);
      } catch (error) {
        if (gen !== this.gen) return;
        if (isFinal(error.code)) {
          this.fail(error.code === "not_live" ? error.message : this.errorText(error.code));
          return;
        }
        // Only our own errors carry text for people; a failed fetch of a visitor token does not.
        this.lost(error instanceof ChatError ? error.message : undefined);
        if (!(error instanceof ChatError) && !this.everWelcomed) this.checkEmbedding();
        return;
      }
      if (gen !== this.gen) return;
      const url = this.origin.replace(/^http/, "ws") + "/ws/widget?workstream=" +
        encodeURIComponent(this.id);
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        this.lost();
        return;
      }
      this.ws = ws;
      this.welcomed = false;
      this.ready = false;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this.lastFrameAt = Date.now();
        ws.send(JSON.stringify(Object.assign({ type: "hello", token, locale: this.wireLocale() }, this.cursor())));
      };
      ws.onmessage = (event) => { if (this.ws === ws) this.onFrame(event.data); };
      ws.onclose = () => {
        if (this.ws !== ws) return;
        this.lost();
        if (!opened && !this.everWelcomed) this.checkEmbedding();
      };
    }

    // A refused handshake looks like a network error to the page; the server says over CORS-open
    // HTTP whether this origin may embed the chat at all.
    async checkEmbedding() {
      let res;
      try {
        res = await fetch(this.origin + "/api/widget/embedding?workstream=" + encodeURIComponent(this.id),
          { credentials: "omit", cache: "no-store" });
      } catch (e) {
        return; // unreachable: the backoff goes on
      }
      const body = await res.json().catch(() => null);
      if (this.everWelcomed || this.stopped) return;
      if (res.status === 404) this.fail(this.t.errWorkstream);
      else if (body && body.allowed === false) this.fail(this.t.errOrigin);
    }

    dropSocket() {
      clearInterval(this.pingTimer);
      const ws = this.ws;
      this.ws = null;
      this.ready = false;
      if (ws) try { ws.close(); } catch (e) { /* already closing */ }
    }

    disconnect() {
      clearTimeout(this.retryTimer);
      this.gen += 1;
      this.dropSocket();
    }

    // Every failure that is not final ends here: the widget keeps trying with backoff, and sends wait.
    lost(text, atLeast) {
      if (this.stopped) return;
      if (this.welcomedAt && Date.now() - this.welcomedAt > STABLE_AFTER) this.attempt = 0;
      this.welcomedAt = 0;
      this.dropSocket();
      this.showPending();
      this.setStatus(this.t.reconnecting);
      this.scheduleReconnect(atLeast);
      // Until the first welcome the customer is told what went wrong (after a few tries if it is only
      // the network); the widget keeps retrying behind the message, and a welcome hides it.
      if (!this.everWelcomed && (text || this.attempt >= UNREACHABLE_AFTER)) {
        this.showError(text || this.t.errUnreachable);
      }
    }

    scheduleReconnect(atLeast) {
      clearTimeout(this.retryTimer);
      const cap = this.attempt < SOON_ATTEMPTS ? BACKOFF_SOON : BACKOFF_MAX;
      const base = Math.min(cap, BACKOFF_MIN * 2 ** this.attempt);
      this.attempt = Math.min(this.attempt + 1, 16);
      // Jitter spreads a crowd of widgets reconnecting after a server restart.
      const delay = Math.max(atLeast || 0, base / 2 + Math.random() * (base / 2));
      this.retryTimer = setTimeout(() => this.connect(), delay);
    }

    fail(text) {
      this.disconnect();
      this.stopped = true;
      this.root.classList.add("pc-stopped");
      this.setStatus("");
      this.showError(text);
    }

    // "Try again", the browser coming back online: now, with a new token request (a pending one may be
    // a fetch the page started offline that will never call back).
    retry() {
      this.errorBox.hidden = true;
      this.root.classList.remove("pc-stopped");
      this.helloRetried = false;
      this.attempt = 0;
      this.tokenPromise = null;
      this.connect();
    }

    send(frame) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
    }

    ping() {
      if (Date.now() - this.lastFrameAt > SILENCE_LIMIT) { this.lost(); return; }
      this.send({ type: "ping" });
    }

    onFrame(data) {
      let frame;
      try { frame = JSON.parse(data); } catch (e) { return; }
      if (!frame || typeof frame !== "object") return;
      this.lastFrameAt = Date.now();
      switch (frame.type) {
        case "welcome": return this.onWelcome(frame);
        case "hours": return this.showHours(frame.hours);
        case "backlog": return this.onBacklog(frame);
        case "message": return this.onMessage(frame.message);
        case "typing": return this.showTyping(frame.sender === "agent" && (frame.sender_name || this.t.agent));
        case "read": return this.onRead(frame);
        case "conversation": return this.onConversation(frame.conversation);
        case "ack": return this.onAck(frame);
        case "error": return this.onError(frame);
        // This server may have missed live events: reconnect, saying hello from the contiguous cursor.
        case "resync": return this.lost();
        case "erased": return this.onErased();
        default: return; // pong and anything newer than this widget
      }
    }

    // The customer's data was erased: none of it stays on screen or in storage, the panel closes, and the
    // widget does not reconnect by itself (that would start a new customer) until the page loads again.
    onErased() {
      this.fail(this.t.erased);
      this.clear();
      this.outbox.clear();
      this.locals = [];
      this.failedSends = [];
      this.unread.clear();
      this.updateBadge();
      sessionStore.remove(this.visitorKey());
      this.render({ bottom: true });
      this.updateHeader();
      this.close();
    }

    onMessage(msg) {
      if (!msg || !this.addMessage(msg, true)) return;
      const rec = this.conversations.get(msg.conversation_id);
      if (contiguous(rec) < maxSeq(rec)) this.fillGap(rec);
      this.render();
      this.markRead();
      if (msg.sender === "customer") return;
      this.showTyping(null);
      this.emit("message", { message: Object.assign({}, msg) });
    }

    onWelcome(frame) {
      this.welcomed = true;
      this.everWelcomed = true;
      this.welcomedAt = Date.now();
      this.helloRetried = false;
      this.errorBox.hidden = true;
      this.root.classList.remove("pc-stopped");
      this.workstream = frame.workstream || {};
      this.appearance = frame.appearance || null;
      this.applyAppearance();
      this.showHours(frame.hours);
      this.setStatus("");
      this.updateHeader();
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.ping(), PING_EVERY);
    }

    // A big backlog comes in parts (more: true on all but the last): the first part decides reset, a
    // conversation may continue into the next part, and sends wait until the last has arrived.
    onBacklog(frame) {
      const first = !this.backlogging;
      if (first && frame.reset) this.clear();
      // Nothing held after a reset means the customer had no conversation: none can be older.
      if (first && frame.reset && !frame.more && !(frame.conversations || []).length) {
        this.older = { before: Infinity, conv: null };
      }
      for (const entry of frame.conversations || []) {
        if (!entry || !entry.conversation) continue;
        this.upsertConversation(entry.conversation, entry.complete);
        const readUpTo = entry.conversation.read_seq || 0;
        for (const msg of entry.messages || []) this.addMessage(msg, !frame.reset || msg.seq > readUpTo);
        this.applyStoredRead(entry.conversation);
      }
      this.backlogging = !!frame.more;
      if (frame.more) return;
      this.ready = true;
      this.uploadAll(this.tray, true);
      for (const entry of this.outbox.values()) this.uploadAll(entry.files || [], true);
      for (const rec of this.conversations.values()) if (contiguous(rec) < maxSeq(rec)) this.fillGap(rec);
      this.render({ bottom: !!frame.reset });
      this.showPending();
      this.markRead();
      // Resend with the same client ids; the server answers a stored one with its original ack.
      for (const entry of this.outbox.values()) this.transmit(entry);
      if (this.isOpen) this.probeOlder();
      if (this.returnLink) this.followReturnLink();
    }

    // What the customer has read on any device (stored by the server) is not unread on this one.
    applyStoredRead(conv) {
      const upTo = conv.read_seq || 0;
      if (!upTo) return;
      this.setUnread((key) => {
        const [c, seq] = key.split(":").map(Number);
        return c === conv.id && seq <= upTo;
      });
    }

    // Opens the panel on the conversation an email linked to, paging it in when it is an older one.
    async followReturnLink() {
      const link = this.returnLink;
      this.returnLink = null;
      let cid;
      try {
        cid = (await this.api("/return-link?link=" + encodeURIComponent(link))).conversation_id;
      } catch (e) {
        return; // expired, or not this customer's conversation: the page stays as it was
      }
      this.open();
      for (let pages = 0; pages < 50; pages++) {
        const held = this.conversations.get(cid);
        if (held && (held.messages.size || isComplete(held))) break;
        const oldest = this.oldest();
        if (!oldest || oldest.conv.id < cid || this.olderState(oldest) === "none") break;
        await this.loadEarlier();
      }
      const rec = this.conversations.get(cid);
      if (!rec || rec === this.newest()) return; // the newest is already in view at the bottom
      const first = this.nodes.get(cid + ":" + minSeq(rec));
      if (first) first.scrollIntoView({ block: "start" });
    }

    onConversation(conv) {
      if (!conv || conv.id == null) return;
      const oldest = this.oldest();
      // A change to an old conversation we never paged in (e.g. it closed) has nothing to show.
      if (!this.conversations.has(conv.id) && oldest && conv.id < oldest.conv.id) return;
      this.upsertConversation(conv, !conv.last_seq);
      this.applyStoredRead(conv);
      this.render();
    }

    onAck(frame) {
      const entry = this.outbox.get(frame.client_id);
      if (!entry) return; // the message frame got here first and already settled it
      this.forgetLocal(entry);
      const rec = this.recordFor(frame.conversation_id);
      const key = frame.conversation_id + ":" + frame.seq;
      entry.node.classList.remove("pc-pending");
      if (rec.messages.has(frame.seq)) {
        entry.node.remove();
      } else {
        const msg = {
          conversation_id: frame.conversation_id, seq: frame.seq, sender: "customer",
          sender_name: null, body: entry.body, client_id: entry.client_id,
          created_at: entry.created_at, provisional: true,
          attachments: (entry.files || []).map((f) => f.stored),
        };
        rec.messages.set(frame.seq, msg);
        this.nodes.set(key, entry.node);
        this.fillMessage(entry.node, msg);
      }
      this.render();
    }

    onError(frame) {
      if (!this.welcomed) { this.onHelloError(frame); return; }
      if (!frame.client_id) return;
      const entry = this.outbox.get(frame.client_id);
      if (!entry) return;
      if (frame.code === "rate_limited" || frame.code === "database_busy") {
        // Nothing was stored: the same send goes again once the server allows it.
        setTimeout(() => { if (this.outbox.has(entry.client_id)) this.transmit(entry); },
          1000 * (Number(frame.retry_after) || 1));
        return;
      }
      // The server closes the socket after a server_error; the reconnect resends.
      if (frame.code === "server_error") return;
      if (frame.code === "token_expired") {
        // The sign-in this socket started with ran out: reconnect with a fresh token; the outbox,
        // this message included, is resent with the same client ids, so nothing is lost or doubled.
        this.token = null;
        this.connect();
        return;
      }
      // Failed sends stay on screen (so the text is not lost) but leave the outbox for good.
      this.forgetLocal(entry);
      this.failedSends.push({ node: entry.node, after: this.tail });
      entry.node.classList.remove("pc-pending");
      entry.node.classList.add("pc-failed");
      const reason = frame.code === "message_too_long" ? this.t.tooLong
        : frame.code === "empty_message" ? this.t.empty
          : frame.code === "too_many_attachments" ? this.t.tooMany : this.t.notSent;
      entry.node.appendChild(el("div", "pc-note", reason));
      this.render();
    }

    // A refused token is tried once more with a fresh one at once; a refusal that is final stops the
    // widget with its own message; anything else (server_error, too_many_connections, rate_limited,
    // an expired token again) reconnects with backoff, honouring retry_after.
    onHelloError(frame) {
      const code = frame.code;
      if (isTokenError(code)) {
        this.visitorRefused = !this.authPath;
        this.token = null;
        logRefusal(code, frame.message);
      }
      // The server closes the socket after a bad hello.
      this.dropSocket();
      if (isTokenError(code) && !this.helloRetried) {
        this.helloRetried = true;
        this.connect();
      } else if (isFinal(code)) {
        this.fail(this.errorText(code));
      } else {
        this.lost(this.t.errGeneric, 1000 * (Number(frame.retry_after) || 0));
      }
    }

    errorText(code) {
      const t = this.t;
      return { forbidden_origin: t.errOrigin, unknown_workstream: t.errWorkstream }[code] ||
        (isTokenError(code) ? t.errRefused : t.errGeneric);
    }

    // A message with files goes once every file is uploaded; until then the uploads run (or wait).
    transmit(entry) {
      if (!this.ready || !this.uploadAll(entry.files || [])) return;
      const frame = { type: "send", client_id: entry.client_id, body: entry.body };
      if (entry.files && entry.files.length) frame.attachments = entry.files.map((f) => f.stored.id);
      this.send(frame);
    }

    submit() {
      const body = this.input.value.trim();
      const files = this.takeTray();
      if (!body && !files.length) return;
      const entry = {
        client_id: newClientId(), body, created_at: new Date().toISOString(), files,
        node: this.messageNode("customer"), state: el("div", "pc-state"),
      };
      const retry = el("button", "pc-retry");
      retry.type = "button";
      retry.addEventListener("click", () => this.retry());
      entry.state.append(el("span"), retry);
      entry.node.classList.add("pc-pending");
      entry.node.setAttribute("data-client-id", entry.client_id);
      this.fillMessage(entry.node, { sender: "customer", body, created_at: entry.created_at });
      this.showChips(entry);
      entry.node.appendChild(entry.state);
      this.outbox.set(entry.client_id, entry);
      this.showPending();
      this.locals.push(entry.node);
      this.input.value = "";
      this.typingSentAt = 0; // the next words are news again
      this.autosize();
      this.render({ bottom: true });
      this.transmit(entry);
    }
  }

  // ---- attachments ---------------------------------------------------------------------------
  // Files chosen (paperclip, drop, paste) wait in the tray above the input and upload at once when
  // connected; Send takes them into the outbox entry with the text, which goes out (once, by its
  // client id) when every upload is done. Offline they wait like text does.

  const UPLOAD_ERRORS = { attachment_too_large: "tooBig", attachment_type_not_allowed: "badType",
    attachment_rejected: "refused", attachment_image_too_large: "badImage", attachment_corrupt: "badImage" };
  const sizeText = (n) => n < 1024 ? n + " B" : n < 1048576 ? Math.round(n / 1024) + " KB"
    : (n / 1048576).toFixed(1) + " MB";

  Object.assign(Widget.prototype, {
    mountFiles($) {
      this.tray = [];
      this.trayBox = $(".pc-tray");
      const pick = $(".pc-pick");
      $(".pc-clip").addEventListener("click", () => pick.click());
      pick.addEventListener("change", () => { this.addFiles(pick.files); pick.value = ""; });
      this.input.addEventListener("paste", (e) => {
        const files = e.clipboardData && e.clipboardData.files;
        if (files && files.length) { e.preventDefault(); this.addFiles(files); }
      });
      const over = (on) => (e) => {
        if (!e.dataTransfer || Array.from(e.dataTransfer.types || []).indexOf("Files") < 0) return;
        e.preventDefault();
        this.panel.classList.toggle("pc-drop", on);
        if (e.type === "drop") this.addFiles(e.dataTransfer.files);
      };
      this.panel.addEventListener("dragover", over(true));
      this.panel.addEventListener("dragleave", over(false));
      this.panel.addEventListener("drop", over(false));
    },

    addFiles(list) {
      for (const file of Array.from(list || [])) {
        const item = { file, chip: el("div", "pc-chip") };
        this.tray.push(item);
        this.trayBox.appendChild(item.chip);
        this.chip(item, () => {
          this.tray.splice(this.tray.indexOf(item), 1);
          item.chip.remove();
        });
      }
      this.uploadAll(this.tray);
    },

    // Files refused for good (too big, wrong type) stay in the tray, saying why.
    takeTray() {
      const files = this.tray.filter((f) => !f.error || f.retryable);
      for (const f of files) f.chip.remove();
      this.tray = this.tray.filter((f) => files.indexOf(f) < 0);
      return files;
    },

    // The pending message shows its files' chips until the server's copy replaces them.
    showChips(entry) {
      if (!entry.files.length) return;
      const box = el("div", "pc-files");
      for (const item of entry.files) {
        box.appendChild(item.chip);
        this.chip(item, () => {
          entry.files.splice(entry.files.indexOf(item), 1);
          item.chip.remove();
          if (!entry.files.length && !entry.body) { this.forgetLocal(entry); entry.node.remove(); }
          else this.transmit(entry);
        });
      }
      entry.node.insertBefore(box, entry.node.querySelector(".pc-time"));
    },

    // Name, then progress or what went wrong (with a retry when trying again can help), then ✕:
    // until the message is sent, any file can be taken out.
    chip(item, remove) {
      item.remove = remove;
      const c = item.chip;
      c.textContent = "";
      c.classList.toggle("pc-bad", !!item.error);
      c.append(el("span", null, item.file.name || "file"));
      if (item.error) c.append(el("span", null, item.error));
      else if (!item.stored) {
        const bar = el("progress");
        bar.max = 1;
        if (item.xhr) bar.value = item.progress || 0;
        else bar.title = this.t.upWaiting;
        bar.setAttribute("aria-label", item.xhr ? this.t.sending : this.t.upWaiting);
        c.append(bar);
      }
      if (item.error && item.retryable) {
        const again = el("button", null, this.t.tryAgain);
        again.type = "button";
        again.addEventListener("click", () => { item.error = null; this.upload(item); });
        c.append(again);
      }
      const x = el("button", null, "✕");
      x.type = "button";
      x.setAttribute("aria-label", this.t.remove.replace("{name}", item.file.name || "file"));
      x.addEventListener("click", () => { if (item.xhr) item.xhr.abort(); item.cancelled = true; item.remove(); });
      c.append(x);
    },

    // True when every file is stored; starts the uploads that are not running yet.
    // `again`: after a reconnect, uploads that failed on the network are tried once more.
    uploadAll(files, again) {
      let done = true;
      for (const item of files) {
        if (!item.stored) done = false;
        if (again && item.retryable) item.error = null;
        if (!item.stored && !item.xhr && !item.error && this.ready) this.upload(item);
      }
      return done;
    },

    async upload(item, retried) {
      const t = this.t;
      item.xhr = new XMLHttpRequest();
      const xhr = item.xhr;
      this.chip(item, item.remove);
      let token;
      try { token = await this.getToken(!!retried); } catch (e) { token = null; }
      if (item.cancelled || xhr !== item.xhr) return;
      xhr.open("POST", this.origin + "/api/widget/workstreams/" + encodeURIComponent(this.id) +
        "/attachments?name=" + encodeURIComponent(item.file.name || "file"));
      xhr.setRequestHeader("Authorization", "Bearer " + token);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = (e) => {
        item.progress = e.lengthComputable ? e.loaded / e.total : 0;
        const bar = item.chip.querySelector("progress");
        if (bar) bar.value = item.progress;
      };
      const finish = (error, retryable) => {
        item.xhr = null;
        item.error = error;
        item.retryable = retryable;
        this.chip(item, item.remove);
        for (const entry of this.outbox.values()) if ((entry.files || []).indexOf(item) >= 0) this.transmit(entry);
      };
      xhr.onerror = () => finish(t.upFailed, true);
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not our JSON */ }
        if (xhr.status === 201 && body && body.attachment) { item.stored = body.attachment; finish(null); return; }
        const code = (body && body.error && body.error.code) || "";
        if (isTokenError(code) && !retried) { this.upload(item, true); return; }
        const key = UPLOAD_ERRORS[code];
        finish(key ? t[key] : t.upFailed, !key);
      };
      xhr.send(item.file);
    },

    showFiles(node, msg) {
      let box = node.querySelector(".pc-files");
      node.querySelector(".pc-body").hidden = !msg.body;
      if (!msg.attachments) return;
      if (box) box.remove();
      if (!msg.attachments.length) return;
      box = el("div", "pc-files");
      for (const a of msg.attachments) {
        const url = this.origin + a.url;
        if (a.thumbnail_url) {
          const thumb = el("button", "pc-thumb");
          thumb.type = "button";
          const img = el("img");
          img.src = this.origin + a.thumbnail_url;
          img.alt = a.name;
          thumb.appendChild(img);
          thumb.addEventListener("click", () => this.view(a, url, thumb));
          box.appendChild(thumb);
        } else {
          const file = el("div", "pc-file");
          const link = el("a", null, a.name);
          link.href = url;
          link.download = a.name;
          link.setAttribute("aria-label", this.t.download.replace("{name}", a.name));
          file.append(link, el("small", null, sizeText(a.size) + " · " + a.content_type));
          box.appendChild(file);
        }
      }
      node.insertBefore(box, node.querySelector(".pc-time"));
    },

    // Full size inside the panel: no new window, and Escape or Close goes back to the thumbnail.
    view(a, url, from) {
      const box = el("div", "pc-viewer");
      box.setAttribute("role", "dialog");
      box.setAttribute("aria-label", a.name);
      const img = el("img");
      img.src = url;
      img.alt = a.name;
      const bar = el("div");
      const link = el("a", null, this.t.download.replace("{name}", a.name));
      link.href = url;
      link.download = a.name;
      const shut = el("button", null, this.t.closeImage);
      shut.type = "button";
      const close = () => { box.remove(); from.focus(); };
      shut.addEventListener("click", close);
      box.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.stopPropagation(); close(); } });
      bar.append(link, shut);
      box.append(img, bar);
      this.panel.appendChild(box);
      shut.focus();
    },
  });

  // ---- bootstrapping -------------------------------------------------------------------------

  function findScript() {
    const current = document.currentScript;
    if (current && current.hasAttribute("data-workstream") &&
      !current.hasAttribute("data-pc-initialised")) return current;
    // currentScript is null when the tag was injected and run from a callback.
    const all = document.querySelectorAll('script[src*="widget.js"][data-workstream]');
    for (let i = all.length - 1; i >= 0; i--) {
      if (!all[i].hasAttribute("data-pc-initialised")) return all[i];
    }
    return null;
  }

  // The host may have pasted the stub from the README, which queues calls as [method, args] in
  // PersistentChat.q until this script arrives; they are replayed in order once a widget exists.
  function namespace() {
    const existing = window.PersistentChat;
    if (existing && typeof existing === "object" && existing.instances) return existing;
    const instances = {};
    const listeners = {};
    let waiting = (existing && Array.isArray(existing.q) ? existing.q : []).slice();
    let locale = null;
    const mounted = [];
    // A call for a widget whose script has not run yet (another workstream) waits for it.
    const call = (method, id, arg) => {
      const widget = id != null ? instances[id] : Object.values(instances)[0];
      if (widget) widget[method](arg);
      else waiting.push([method, method === "setLocale" ? [arg, id] : [id]]);
      return api;
    };
    const api = {
      instances,
      open: (id) => call("open", id),
      close: (id) => call("close", id),
      toggle: (id) => call("toggle", id),
      // Without an id it is the page's language: every widget, including ones not loaded yet.
      setLocale: (code, id) => {
        if (id != null) return call("setLocale", id, code);
        locale = String(code);
        for (const widget of Object.values(instances)) widget.setLocale(locale);
        return api;
      },
      // A ready handler added late still hears about widgets that are already up.
      on: (name, fn) => {
        if (EVENTS.indexOf(name) < 0 || typeof fn !== "function") return api;
        (listeners[name] = listeners[name] || []).push(fn);
        if (name === "ready") for (const workstream of mounted) deliver(fn, { workstream });
        return api;
      },
    };
    // A host handler that throws must not break the widget; rethrown later, it still shows up.
    const deliver = (fn, detail) => {
      try { fn(detail); } catch (e) { setTimeout(() => { throw e; }); }
    };
    Object.defineProperty(api, "emit", {
      value: (name, detail) => {
        if (name === "ready") mounted.push(detail.workstream);
        for (const fn of (listeners[name] || []).slice()) deliver(fn, detail);
      },
    });
    Object.defineProperty(api, "replay", {
      value: () => {
        const calls = waiting;
        waiting = [];
        for (const entry of calls) {
          const [method, args] = Array.isArray(entry) ? entry : [];
          if (typeof api[method] === "function") api[method].apply(null, Array.from(args || []));
        }
      },
    });
    Object.defineProperty(api, "locale", { get: () => locale });
    window.PersistentChat = api;
    return api;
  }

  const script = findScript();
  if (!script) return;
  script.setAttribute("data-pc-initialised", "");
  const id = script.getAttribute("data-workstream");
  const api = namespace();
  if (!id || api.instances[id]) return; // the same widget included twice

  const side = script.getAttribute("data-position") === "left" ? "left" : "right";
  const slot = Object.values(api.instances).filter((w) => w.side === side).length;
  const widget = new Widget(script, slot, api.emit, api.locale);
  api.instances[id] = widget;
  api.replay();

  // Waiting for the document lets the host define its token function after this tag.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => widget.mount(), { once: true });
  } else {
    widget.mount();
  }
})();
