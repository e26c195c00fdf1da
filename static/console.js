// Agent console. Plain script, no build step; the page's CSP allows only same-origin scripts and styles,
// so nothing here uses inline handlers or style attributes, and message data only ever reaches the DOM
// as text.
'use strict';

(() => {
  const API = '/console/api';
  const Lists = window.ConsoleLists;
  const PING_MS = 25000;
  const PONG_FALLBACK_MS = 5000;
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const PAGE = 100; // the protocol's largest page, so gap filling needs few round trips
  const PREVIEW_CHARS = 140;
  const GAP_WAIT_MS = 1000;
  const BEEP_MS = 200;
  const PRESENCE_LABELS = {
    available: 'Available',
    busy: 'Busy',
    busy_dnd: 'Do not disturb',
    away: 'Away',
    offline: 'Offline',
    inactive: 'Inactive',
  };
  const BADGE_LABELS = { returned: 'Returned', assigned: 'New' };

  const $ = (id) => document.getElementById(id);
  const app = $('app');
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const loginUrl = app.dataset.loginUrl;
  const baseTitle = document.title;

  const ui = {
    appError: $('app-error'),
    connection: $('connection'),
    noSelection: $('no-selection'),
    section: $('conversation'),
    customer: $('conv-customer'),
    workstream: $('conv-workstream'),
    status: $('conv-status'),
    agent: $('conv-agent'),
    details: $('conv-details'),
    take: $('take'),
    offer: $('offer'),
    accept: $('accept'),
    countdown: $('offer-countdown'),
    resume: $('resume'),
    park: $('park'),
    transfer: $('transfer'),
    closeWrapUp: $('close-wrap-up'),
    end: $('end'),
    actionError: $('action-error'),
    thread: $('thread'),
    history: $('history'),
    divider: $('current-divider'),
    loadEarlier: $('load-earlier'),
    composeNote: $('compose-note'),
    compose: $('compose'),
    reply: $('reply'),
    send: $('compose').querySelector('button[type="submit"]'),
    composeError: $('compose-error'),
    cannedMenu: $('canned-menu'),
    cannedOptions: $('canned-options'),
    cannedStatus: $('canned-status'),
    noteForm: $('note-form'),
    noteBody: $('note-body'),
    noteSend: $('note-form').querySelector('button[type="submit"]'),
    noteError: $('note-error'),
    typing: $('typing'),
    endDialog: $('end-dialog'),
    endConfirm: $('end-confirm'),
    endCancel: $('end-cancel'),
    transferDialog: $('transfer-dialog'),
    transferTo: $('transfer-to'),
    transferConfirm: $('transfer-confirm'),
    transferCancel: $('transfer-cancel'),
    presence: $('presence'),
    presenceDot: $('presence-dot'),
    presenceNote: $('presence-note'),
    capacity: $('capacity'),
    capacityFill: $('capacity-fill'),
    capacityText: $('capacity-text'),
    enableNotifications: $('enable-notifications'),
    agents: $('list-agents'),
    email: $('conv-email'),
    emailMe: $('email-me'),
  };

  // ---------------------------------------------------------------- helpers

  // Strings become Text nodes through append(), so data can never be parsed as markup here.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value == null || value === false) continue;
      if (key === 'className') node.className = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    node.append(...children.filter((c) => c != null && c !== false));
    return node;
  }

  // Only http and https become links, built node by node: message text is never parsed as HTML.
  const LINK = /\bhttps?:\/\/[^\s<>"']+/gi;
  function linkify(node, text) {
    let last = 0;
    for (const match of String(text).matchAll(LINK)) {
      const url = match[0].replace(/[.,;:!?)\]]+$/, '');
      let href = '';
      try { href = new URL(url).href; } catch (e) { continue; }
      const link = el('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow' }, url);
      node.append(text.slice(last, match.index), link);
      last = match.index + url.length;
    }
    node.append(text.slice(last));
  }

  // Dates in the browser's language; times follow the rule shared with the widget (message_time.js).
  const dateFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
  const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

  // The server sends microseconds; not every engine parses more than three fraction digits.
  function parseTime(iso) {
    if (!iso) return null;
    const d = new Date(String(iso).replace(/(\.\d{3})\d+/, '$1'));
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function shortTime(d) {
    return messageTime.text(d);
  }

  function timeElement(iso) {
    const d = parseTime(iso);
    return d ? el('time', { datetime: iso, title: fullFormat.format(d) }, shortTime(d)) : null;
  }

  function formatDate(iso) {
    const d = parseTime(iso);
    return d ? dateFormat.format(d) : '';
  }

  function customerName(summary) {
    const c = summary && summary.customer;
    return (c && (c.display_name || c.sub)) || 'Customer';
  }

  function isEnded(s) {
    return s.status === 'wrap_up' || s.status === 'closed';
  }

  function isMine(s) {
    return Boolean(me && s.agent && s.agent.id === me.id);
  }

  // Pushed or transferred to me and not yet accepted (replying accepts too).
  function isOffered(s) {
    return Boolean(s && s.offer_expires_at && s.status === 'active' && isMine(s));
  }

  function isPersistent(s) {
    return Boolean(s && s.workstream && s.workstream.mode === 'persistent');
  }

  function presenceLabel(presence) {
    return PRESENCE_LABELS[presence] || presence || '';
  }

  // "1:45" until the offer runs out; null when it has no expiry.
  function countdown(s) {
    const expires = parseTime(s && s.offer_expires_at);
    if (!expires) return null;
    const seconds = Math.max(0, Math.ceil((expires.getTime() - Date.now()) / 1000));
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
  }

  function statusLabel(s) {
    switch (s.status) {
      case 'bot': return 'With the bot';
      case 'open': return s.agent ? 'Returned' : 'In queue';
      case 'active': return 'Active';
      case 'waiting': return 'Waiting';
      case 'wrap_up': return 'Wrap-up';
      case 'closed': return 'Closed';
      default: return s.status || '';
    }
  }

  function newClientId() {
    if (crypto.randomUUID) return `a-${crypto.randomUUID()}`;
    // randomUUID exists only in secure contexts, and self-hosted consoles are sometimes served over http.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `a-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // aria-disabled rather than disabled: a disabled button drops keyboard focus to <body>.
  function setBusy(button, busy) {
    if (busy) button.setAttribute('aria-disabled', 'true');
    else button.removeAttribute('aria-disabled');
  }

  function showError(target, err) {
    target.textContent = err ? (err.message || String(err)) : '';
  }

  // ---------------------------------------------------------------- HTTP

  class ApiError extends Error {
    constructor(code, message, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  function goToLogin() {
    location.assign(`${loginUrl}?next=${encodeURIComponent(location.pathname)}`);
  }

  async function api(method, path, body) {
    const options = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (method !== 'GET') {
      options.headers['Content-Type'] = 'application/json';
      options.headers['X-CSRFToken'] = csrfToken;
      options.body = JSON.stringify(body || {});
    }
    let res;
    try {
      res = await fetch(API + path, options);
    } catch {
      throw new ApiError('network', 'Could not reach the server. Check the connection and try again.', 0);
    }
    // An expired session shows up either as 401 or as a redirect to the sign-in page.
    if (res.status === 401 || (res.redirected && new URL(res.url).pathname === loginUrl)) {
      goToLogin();
      throw new ApiError('not_authenticated', 'Your session has ended. Please sign in again.', 401);
    }
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      throw new ApiError(e.code || `http_${res.status}`,
        e.message || `The server answered with an error (${res.status}).`, res.status);
    }
    if (!data) throw new ApiError('invalid_response', 'The server sent an unreadable answer.', res.status);
    return data;
  }

  // ---------------------------------------------------------------- state

  let me = null;
  // The lists, the team and my capacity, as the snapshot and the live frames left them (console_lists.js).
  const listState = Lists.create();
  const items = new Map(); // id -> <li>
  const unread = new Set();
  const drafts = new Map(); // id -> unsent reply text, so switching conversations loses nothing
  const lists = {
    mine: { ids: [], ul: $('list-mine'), empty: $('empty-mine') },
    waiting: { ids: [], ul: $('list-waiting'), empty: $('empty-waiting') },
    queue: { ids: [], ul: $('list-queue'), empty: $('empty-queue'), more: $('more-queue') },
    recent: { ids: [], ul: $('list-recent'), empty: $('empty-recent') },
  };
  let snapshotParts = []; // a snapshot split over several frames, until its last part
  // Per conversation assigned to me (mine, waiting: their messages come live), the highest seq up to
  // which the console has seen every message. A message above it (a live event the server missed) or a
  // summary with a higher last_seq makes it fetch the ones in between, so previews, unread marks and the
  // title count miss nothing. Queue and recent items get no message frames: their summaries, sent on
  // every change and in every snapshot, carry their previews.
  const seen = new Map();
  const catchingUp = new Set();
  let current = null; // the open conversation: {id, summary, transcript, loading, pending, filling}
  let openToken = 0;
  let listsLoaded = false;
  let unseen = 0;
  let sending = false;
  let sendDraft = null; // reused after a failed send so a retry keeps its client_id (idempotent)
  const badges = new Map(); // id -> 'returned' | 'assigned', until the agent opens the conversation
  const titleSkips = new Map(); // id -> seq of the customer message a "returned" notification already counted
  let notifications = 0;
  // A frame newer than an HTTP answer in flight wins over it (every change sends a frame).
  let capacityFrames = 0;
  let presenceFrames = 0;

  function summaryOf(id) {
    return Lists.summary(listState, id);
  }

  // Summaries carry the version of the conversation they show: the higher one is the newer state.
  function newer(a, b) {
    return !a || !b || (a.version || 0) >= (b.version || 0);
  }

  // The ids shown, in the reducer's order; conversations that notified me go first, the latest on top.
  function relist() {
    const badged = [...badges.keys()].reverse();
    for (const name of ['mine', 'waiting', 'recent']) {
      const ids = Lists.sortedIds(listState, name);
      const first = badged.filter((id) => ids.includes(id));
      lists[name].ids = [...first, ...ids.filter((id) => !badges.has(id))];
    }
    const queue = Lists.queueWindow(listState);
    lists.queue.ids = queue.ids.filter((id) => summaryOf(id));
    lists.queue.hidden = queue.more + queue.ids.length - lists.queue.ids.length;
    prune();
    fetchMissing();
  }

  function upsertSummary(s) {
    const target = Lists.applySummary(listState, s);
    // A badge marks work that came to me; it goes once the conversation is no longer mine and open.
    if (target !== undefined && target !== 'mine' && target !== 'waiting') badges.delete(s.id);
    relist();
    return target;
  }

  function prune() {
    const shown = new Set(Object.values(lists).flatMap((list) => list.ids));
    for (const id of [...items.keys()]) if (!shown.has(id)) items.delete(id);
    const held = (id) => Lists.listOf(listState, id) !== null;
    for (const id of [...unread]) if (!held(id)) unread.delete(id);
    for (const id of [...badges.keys()]) if (!held(id)) badges.delete(id);
    for (const id of [...seen.keys()]) if (!held(id)) seen.delete(id);
  }

  // The queue window moved onto conversations the snapshot gave only the ids of: fetch their summaries.
  let fetchingMissing = false;
  async function fetchMissing() {
    const ids = Lists.missing(listState);
    if (!ids.length || fetchingMissing) return;
    fetchingMissing = true;
    try {
      const data = await api('GET', `/summaries?ids=${ids.join(',')}`);
      for (const s of data.conversations || []) Lists.applySummary(listState, s);
      // Gone meanwhile (erased): nothing to show.
      Lists.drop(listState, ids);
    } catch (err) {
      console.warn('Could not load the queue', err);
      return;
    } finally {
      fetchingMissing = false;
    }
    relist();
    renderLists();
  }

  // A conversation first listed is taken as it is (its summary carries the news); one already listed
  // whose last_seq went past what was seen has missed messages.
  function track(s, wait) {
    const kind = Lists.listOf(listState, s.id);
    if (kind !== 'mine' && kind !== 'waiting') {
      seen.delete(s.id);
      return;
    }
    const held = summaryOf(s.id);
    if (!seen.has(s.id)) seen.set(s.id, held.last_seq || 0);
    else if ((held.last_seq || 0) > seen.get(s.id)) setTimeout(() => catchUp(s.id), wait || 0);
  }

  async function catchUp(id) {
    if (catchingUp.has(id)) return;
    catchingUp.add(id);
    try {
      for (;;) {
        const after = seen.get(id);
        const s = summaryOf(id);
        if (after === undefined || !s || (s.last_seq || 0) <= after) break;
        const data = await api('GET', `/conversations/${id}/messages?after=${after}&limit=${PAGE}`);
        const messages = data.messages || [];
        for (const m of messages) onMessage(m);
        if (!messages.length) break;
      }
    } catch (err) {
      // The next message or reconnect tries again.
      console.warn('Could not fetch missing messages', err);
    } finally {
      catchingUp.delete(id);
    }
  }

  // Right after the socket subscribes the server sends everything the lists, the team and the capacity
  // meter show; live frames follow it, and summaries older than it are ignored by version.
  function onSnapshot(parts) {
    const mineBefore = new Set(lists.mine.ids);
    Lists.load(listState, parts);
    const first = !listsLoaded;
    me = listState.me;
    presenceFrames += 1;
    capacityFrames += 1;
    renderPresence(me.presence);
    renderCapacity(listState.capacity);
    showEmailMe(me);
    renderAgents();
    relist();
    // Offers pushed before this page was listening (say, right at sign-in) still need the agent's eye.
    if (first) {
      for (const id of lists.mine.ids) if (isOffered(summaryOf(id)) && !badges.has(id)) badges.set(id, 'assigned');
      relist();
    } else {
      for (const id of lists.mine.ids) if (!mineBefore.has(id)) notifyIfHidden();
    }
    listsLoaded = true;
    showError(ui.appError, null);
    if (current && summaryOf(current.id) && !current.loading) {
      current.summary = summaryOf(current.id);
      current.transcript.summary = current.summary;
      renderHeader();
    }
    renderLists();
    for (const list of Object.values(lists)) for (const id of list.ids) track(summaryOf(id));
    if (first) started();
  }

  // ---------------------------------------------------------------- lists

  function previewText(s) {
    const m = s.last_message;
    if (!m) return 'No messages yet';
    const files = (m.attachments || []).map((a) => `📎 ${a.name}`).join(' ');
    const text = String(m.body || files).replace(/\s+/g, ' ').trim().slice(0, PREVIEW_CHARS);
    if (m.sender === 'bot') return `${m.sender_name || 'Bot'} (bot): ${text}`;
    if (m.sender !== 'agent') return text;
    return `${isMine(s) ? 'You' : (m.sender_name || 'Agent')}: ${text}`;
  }

  function fillItem(li, s) {
    const id = s.id;
    const isUnread = unread.has(id);
    li.classList.toggle('unread', isUnread);
    if (current && current.id === id) li.setAttribute('aria-current', 'true');
    else li.removeAttribute('aria-current');
    const button = li.firstElementChild;
    const badge = badges.get(id);
    li.classList.toggle('notified', Boolean(badge));
    const offered = isOffered(s);
    button.replaceChildren(
      el('span', { className: 'item-top' },
        el('span', { className: 'item-name' }, customerName(s)),
        badge ? el('span', { className: 'badge', dataset: { kind: badge } }, BADGE_LABELS[badge] || 'New') : null,
        timeElement(s.updated_at || (s.last_message && s.last_message.created_at))),
      el('span', { className: 'item-preview' }, previewText(s)),
      el('span', { className: 'item-meta' },
        [s.workstream && s.workstream.name, statusLabel(s)].filter(Boolean).join(' · '),
        offered ? el('span', { className: 'item-offer' }, ` · Offered, ${countdown(s)} left`) : null),
      // replaceChildren, unlike el(), would write a missing node as the text "null".
      labelChips(s.labels) || '',
    );
    if (isUnread) button.append(el('span', { className: 'visually-hidden' }, ', unread'));
  }

  // Items are reused and only moved when their position changes, so a focused button keeps focus.
  function renderList(list) {
    list.ids.forEach((id, i) => {
      let li = items.get(id);
      if (!li) {
        li = el('li', { dataset: { conversationId: id } }, el('button', { type: 'button', className: 'conv-item' }));
        items.set(id, li);
      }
      fillItem(li, summaryOf(id));
      if (list.ul.children[i] !== li) list.ul.insertBefore(li, list.ul.children[i] || null);
    });
    while (list.ul.children.length > list.ids.length) list.ul.lastElementChild.remove();
    // Until the first snapshot nothing is known to be empty.
    list.empty.hidden = !listsLoaded || list.ids.length > 0 || Boolean(list.hidden);
    if (list.more) {
      list.more.hidden = !list.hidden;
      list.more.textContent = list.hidden ? `and ${list.hidden} more` : '';
    }
  }

  function renderLists() {
    for (const list of Object.values(lists)) renderList(list);
  }

  for (const list of Object.values(lists)) {
    list.ul.addEventListener('click', (event) => {
      const li = event.target.closest('li[data-conversation-id]');
      if (li && event.target.closest('button')) openConversation(Number(li.dataset.conversationId));
    });
  }

  function notifyIfHidden() {
    if (!document.hidden) return;
    unseen += 1;
    document.title = `(${unseen}) ${baseTitle}`;
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) return;
    unseen = 0;
    document.title = baseTitle;
  });

  // ---------------------------------------------------------------- notifications

  // Browsers let a page make sound only after a user gesture, so the audio context is created on the
  // first click or key press anywhere and reused.
  let audio = null;

  function unlockAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      if (!audio) audio = new Context();
      if (audio.state === 'suspended') audio.resume().catch(() => {});
    } catch (err) {
      console.warn('No sound for notifications', err);
    }
  }

  document.addEventListener('click', unlockAudio, true);
  document.addEventListener('keydown', unlockAudio, true);

  function beep() {
    if (!audio || audio.state !== 'running') return;
    try {
      const t = audio.currentTime;
      const end = t + BEEP_MS / 1000;
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = 'sine';
      osc.frequency.setValueAtTime(880, t);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, end);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(t);
      osc.stop(end + 0.01);
    } catch (err) {
      console.warn('Could not play the notification sound', err);
    }
  }

  const canNotify = 'Notification' in window;

  function renderNotificationButton() {
    ui.enableNotifications.hidden = !canNotify || Notification.permission !== 'default';
  }

  ui.enableNotifications.addEventListener('click', async () => {
    if (!canNotify) return;
    try {
      // Older browsers only take a callback; newer ones return a Promise.
      await new Promise((resolve) => {
        const answer = Notification.requestPermission(resolve);
        if (answer && answer.then) answer.then(resolve, resolve);
      });
    } catch (err) {
      console.warn('Could not ask for notification permission', err);
    }
    const hadFocus = document.activeElement === ui.enableNotifications;
    renderNotificationButton();
    if (hadFocus && ui.enableNotifications.hidden) ui.presence.focus();
  });

  function browserNotification(kind, s) {
    if (!canNotify || Notification.permission !== 'granted') return;
    const name = customerName(s);
    const title = kind === 'returned' ? `${name} is back` : `New conversation from ${name}`;
    try {
      const n = new Notification(title, {
        body: s.last_message ? previewText(s) : ((s.workstream && s.workstream.name) || ''),
        tag: `conversation-${s.id}`,
      });
      n.addEventListener('click', () => {
        window.focus();
        openConversation(s.id);
        n.close();
      });
    } catch (err) {
      // Some browsers (Chrome on Android) allow notifications only from a service worker.
      console.warn('Could not show a notification', err);
    }
  }

  // A conversation was pushed or transferred to me, or a waiting one's customer came back.
  function onNotify(kind, s) {
    upsertSummary(s);
    badges.delete(s.id); // re-inserted, so it counts as the newest for ordering
    if (Lists.listOf(listState, s.id)) badges.set(s.id, kind === 'returned' ? 'returned' : 'assigned');
    relist();
    // The customer's message that brought it back follows this frame; count it once in the title.
    if (kind === 'returned') titleSkips.set(s.id, (s.last_seq || 0) + 1);
    if (current && current.id === s.id && newer(s, current.summary)) {
      current.summary = summaryOf(s.id) || s;
      current.transcript.summary = current.summary;
      renderHeader();
    }
    renderLists();
    notifications += 1;
    document.body.dataset.notifications = String(notifications);
    notifyIfHidden();
    beep();
    browserNotification(kind, summaryOf(s.id) || s);
  }

  // ---------------------------------------------------------------- presence, capacity, team

  function renderPresence(presence) {
    ui.presence.value = presence in PRESENCE_LABELS ? presence : 'offline';
    ui.presenceDot.dataset.presence = presence;
    ui.presence.dataset.presence = presence;
    ui.presenceNote.textContent = presence === 'inactive'
      ? 'You are inactive: a conversation offered to you was not accepted in time. Choose Available to get conversations again.'
      : '';
  }

  function renderCapacity(c) {
    if (!c) return;
    const percent = Number(c.percent) || 0;
    let text = `${percent}% · ${c.used} of ${c.capacity} units`;
    if (c.max_items != null) text += ` · ${c.items} of ${c.max_items} conversations`;
    ui.capacityText.textContent = text;
    ui.capacity.setAttribute('aria-valuenow', String(percent));
    ui.capacity.setAttribute('aria-valuetext', text);
    ui.capacity.classList.toggle('over', percent > 100);
    // Over capacity is shown in colour and in the text; the bar itself stops at full.
    ui.capacityFill.style.width = `${Math.min(100, Math.max(0, percent))}%`;
  }

  function applyMe(data, framesBefore) {
    if (!data || !data.agent) return;
    const agent = data.agent;
    if (!me || presenceFrames === framesBefore.presence) {
      me = agent;
      renderPresence(agent.presence);
      const { id, name, presence, presence_changed_at: changedAt, disabled } = agent;
      Lists.apply(listState, { type: 'agent', agent: { id, name, presence, presence_changed_at: changedAt, disabled } });
      renderAgents();
    } else {
      me = { ...agent, presence: me.presence, presence_changed_at: me.presence_changed_at };
    }
    if (capacityFrames === framesBefore.capacity) renderCapacity(data.capacity);
    showEmailMe(agent);
  }

  // Shown once, from the first answer: a later one, asked before a change, must not undo it.
  let emailMeShown = false;
  function showEmailMe(agent) {
    if (emailMeShown) return;
    emailMeShown = true;
    ui.emailMe.checked = agent.notify_email !== false;
    ui.emailMe.disabled = false;
  }

  // The agent's own setting: an email when a customer returns or work is assigned while no console is open.
  ui.emailMe.addEventListener('change', async () => {
    const wanted = ui.emailMe.checked;
    ui.emailMe.disabled = true;
    showError(ui.appError, null);
    try {
      const data = await api('POST', '/notifications', { email: wanted });
      ui.emailMe.checked = data.agent.notify_email;
    } catch (err) {
      ui.emailMe.checked = !wanted;
      showError(ui.appError, err);
    } finally {
      ui.emailMe.disabled = false;
    }
  });

  async function refreshMe() {
    const before = { presence: presenceFrames, capacity: capacityFrames };
    try {
      applyMe(await api('GET', '/me'), before);
    } catch (err) {
      console.warn('Could not refresh presence and capacity', err);
    }
  }

  let presenceRequest = 0;
  ui.presence.addEventListener('change', async () => {
    const chosen = ui.presence.value;
    const token = ++presenceRequest;
    const before = { presence: presenceFrames, capacity: capacityFrames };
    ui.presence.setAttribute('aria-busy', 'true');
    showError(ui.appError, null);
    try {
      const data = await api('POST', '/presence', { presence: chosen });
      if (token === presenceRequest) applyMe(data, before);
    } catch (err) {
      showError(ui.appError, err);
      if (token === presenceRequest && me) renderPresence(me.presence);
    } finally {
      if (token === presenceRequest) ui.presence.removeAttribute('aria-busy');
    }
  });

  function sortedAgents() {
    return Lists.team(listState);
  }

  function renderAgents() {
    const rows = sortedAgents().map((a) => {
      let li = ui.agents.querySelector(`li[data-agent-id="${a.id}"]`);
      if (!li) li = el('li', { className: 'agent', dataset: { agentId: a.id } });
      li.dataset.presence = a.presence;
      const since = parseTime(a.presence_changed_at);
      li.replaceChildren(
        el('span', { className: 'presence-dot', dataset: { presence: a.presence }, 'aria-hidden': 'true' }),
        el('span', { className: 'agent-row-name' }, a.name, me && a.id === me.id ? ' (you)' : null),
        el('span', { className: 'agent-presence', title: since ? `Since ${fullFormat.format(since)}` : null },
          presenceLabel(a.presence)),
      );
      return li;
    });
    rows.forEach((li, i) => {
      if (ui.agents.children[i] !== li) ui.agents.insertBefore(li, ui.agents.children[i] || null);
    });
    while (ui.agents.children.length > rows.length) ui.agents.lastElementChild.remove();
    if (ui.transferDialog.open) fillTransferOptions();
  }

  function onAgent(a) {
    Lists.apply(listState, { type: 'agent', agent: a });
    renderAgents();
    if (me && a.id === me.id) {
      presenceFrames += 1;
      me = { ...me, name: a.name, presence: a.presence, presence_changed_at: a.presence_changed_at };
      renderPresence(a.presence);
    }
    // Summaries show an agent's name: a rename reaches the lists and the open conversation.
    relist();
    renderLists();
    if (current && current.summary && current.summary.agent && current.summary.agent.id === a.id) {
      current.summary = summaryOf(current.id) || current.summary;
      renderHeader();
    }
  }

  function onCapacity(c) {
    Lists.apply(listState, { type: 'capacity', capacity: c });
    capacityFrames += 1;
    renderCapacity(c);
  }

  // ---------------------------------------------------------------- transcripts

  function renderMessage(m, summary) {
    const sender = ['customer', 'agent', 'bot', 'system'].includes(m.sender) ? m.sender : 'system';
    let name = null;
    if (sender === 'customer') name = customerName(summary);
    else if (sender === 'agent') name = m.sender_name || 'Agent';
    else if (sender === 'bot') name = `${m.sender_name || 'Bot'} (bot)`;
    const body = el('p', { className: 'msg-body', hidden: !m.body });
    linkify(body, m.body);
    return el('div', { className: 'msg', dataset: { seq: m.seq, sender, name: name || '', time: m.created_at || '' } },
      el('div', { className: 'msg-meta' }, name ? el('span', { className: 'msg-sender' }, name) : null,
        timeElement(m.created_at)),
      body, window.ConsoleFiles.render(m));
  }

  // Messages from one sender within a few minutes (message_time.js) form a group: one name and time,
  // shown on its first. The others keep theirs for screen readers (.msg-continued hides them visually only).
  function groupWithPrevious(node) {
    const prev = node.previousElementSibling;
    const continued = Boolean(prev) && node.classList.contains('msg') && prev.classList.contains('msg')
      && node.dataset.sender !== 'system' && prev.dataset.sender === node.dataset.sender
      && prev.dataset.name === node.dataset.name
      && messageTime.grouped(parseTime(prev.dataset.time), parseTime(node.dataset.time));
    node.classList.toggle('msg-continued', continued);
  }

  // Internal notes look different from messages and say so in words, not only in colour.
  function renderNote(n) {
    const body = el('p', { className: 'msg-body' });
    linkify(body, n.body);
    return el('div', { className: 'note', dataset: { seq: n.after_seq + 0.5, note: n.id } },
      el('div', { className: 'msg-meta' }, el('span', { className: 'msg-sender' }, n.author_name),
        el('span', { className: 'note-label' }, 'Internal note'), timeElement(n.created_at)),
      body);
  }

  // The messages of one conversation in one container, kept in seq order without duplicates.
  class Transcript {
    constructor(id, container, moreButton, summary) {
      this.id = id;
      this.container = container;
      this.moreButton = moreButton;
      this.summary = summary;
      this.seqs = new Set();
      this.noteIds = new Set();
      this.first = Infinity;
      this.last = 0;
      this.complete = true;
      this.loadingEarlier = false;
    }

    reset(messages, complete) {
      this.container.replaceChildren();
      this.seqs.clear();
      this.noteIds.clear();
      this.first = Infinity;
      this.last = 0;
      for (const m of messages) this.insert(m);
      this.complete = Boolean(complete) || this.first <= 1 || this.seqs.size === 0;
      this.updateMoreButton();
    }

    insert(m) {
      if (this.seqs.has(m.seq)) return false;
      this.seqs.add(m.seq);
      this.place(renderMessage(m, this.summary), m.seq);
      this.first = Math.min(this.first, m.seq);
      this.last = Math.max(this.last, m.seq);
      return true;
    }

    // Nodes are ordered by data-seq; a note's is half a step after the message it follows.
    place(node, position) {
      // New messages nearly always go last, so search from the end.
      let before = this.container.lastElementChild;
      while (before && Number(before.dataset.seq) > position) before = before.previousElementSibling;
      if (before) before.after(node);
      else this.container.prepend(node);
      groupWithPrevious(node);
      if (node.nextElementSibling) groupWithPrevious(node.nextElementSibling);
    }

    insertNote(n) {
      if (this.noteIds.has(n.id)) return false;
      this.noteIds.add(n.id);
      this.place(renderNote(n), n.after_seq + 0.5);
      return true;
    }

    // The highest seq up to which nothing is missing (seqs have no gaps on the server).
    contiguousEnd() {
      if (!this.seqs.size) return 0;
      let seq = this.first;
      while (this.seqs.has(seq + 1)) seq += 1;
      return seq;
    }

    updateMoreButton() {
      const hide = this.complete;
      if (hide && document.activeElement === this.moreButton) this.container.focus();
      this.moreButton.hidden = hide;
    }

    async loadEarlier(errorTarget) {
      if (this.loadingEarlier || this.complete) return;
      this.loadingEarlier = true;
      setBusy(this.moreButton, true);
      showError(errorTarget, null);
      try {
        const data = await api('GET', `/conversations/${this.id}/messages?before=${this.first}`);
        const messages = data.messages || [];
        for (const m of messages) this.insert(m);
        if (!messages.length || this.first <= 1) this.complete = true;
      } catch (err) {
        showError(errorTarget, err);
      } finally {
        this.loadingEarlier = false;
        setBusy(this.moreButton, false);
        this.updateMoreButton();
      }
    }
  }

  // ---------------------------------------------------------------- conversation view

  // A new live region that arrives already filled is not read out, whereas filling the old one would make
  // screen readers announce the whole history each time a conversation is opened.
  function freshLog() {
    const old = $('messages');
    const log = old.cloneNode(false);
    old.replaceWith(log);
    return log;
  }

  function nearBottom() {
    const t = ui.thread;
    return t.scrollHeight - t.scrollTop - t.clientHeight < 48;
  }

  function scrollToBottom() {
    ui.thread.scrollTop = ui.thread.scrollHeight;
  }

  function appendMessages(messages, forceScroll) {
    if (!current || current.loading) return;
    const stick = forceScroll || nearBottom();
    let added = false;
    for (const m of messages) added = current.transcript.insert(m) || added;
    if (added) renderSeen();
    if (added && stick) scrollToBottom();
    if (current.transcript.contiguousEnd() < current.transcript.last) fillGap();
  }

  async function fillGap() {
    const c = current;
    if (!c || c.loading || c.filling) return;
    c.filling = true;
    try {
      for (;;) {
        const after = c.transcript.contiguousEnd();
        const data = await api('GET', `/conversations/${c.id}/messages?after=${after}&limit=${PAGE}`);
        if (c !== current) return;
        const messages = data.messages || [];
        appendMessages(messages);
        if (messages.length < PAGE) break;
      }
    } catch (err) {
      // The next reconnect or message tries again; nothing the agent can do about it right now.
      console.warn('Could not fetch missing messages', err);
    } finally {
      c.filling = false;
    }
  }

  // ---------------------------------------------------------------- seen and emailed

  // The furthest the customer has read, per conversation: from summaries and from live read frames,
  // whichever is further (a summary fetched earlier may predate a read frame).
  const customerRead = new Map();

  function readOf(id, summary) {
    const fromSummary = (summary && summary.customer_read) || { seq: 0, at: null };
    const live = customerRead.get(id);
    return live && live.seq > (fromSummary.seq || 0) ? live : fromSummary;
  }

  function onRead(frame) {
    Lists.apply(listState, frame);
    const known = customerRead.get(frame.conversation_id);
    if (known && known.seq >= frame.seq) return;
    customerRead.set(frame.conversation_id, { seq: frame.seq, at: frame.read_at });
    if (current && current.id === frame.conversation_id) renderSeen();
  }

  // "Seen 14:02" under the last agent message the customer has been shown, on any device.
  function renderSeen() {
    if (!current || current.loading) return;
    const container = current.transcript.container;
    const read = readOf(current.id, current.summary);
    let target = null;
    for (const node of container.querySelectorAll('.msg[data-sender="agent"]')) {
      if (Number(node.dataset.seq) <= (read.seq || 0)) target = node;
    }
    const old = container.querySelector('.msg-seen');
    const at = parseTime(read.at);
    const text = at ? `Seen ${shortTime(at)}` : 'Seen';
    if (old && old.parentNode === target && old.textContent === text) return;
    if (old) old.remove();
    if (target) target.append(el('p', { className: 'msg-seen' }, text));
  }

  // On the conversation: "Emailed 14:02", why an email did not go, and "email notifications off".
  function renderEmailState(s) {
    const email = (s && s.email) || {};
    const parts = [];
    const sentAt = parseTime(email.sent_at);
    if (email.status === 'sent' && sentAt) parts.push(`Emailed ${shortTime(sentAt)}`);
    else if (email.status === 'retrying') parts.push(`Email not sent yet, retrying: ${email.error || 'unknown error'}`);
    else if (email.status === 'failed') parts.push(`Email not delivered: ${email.error || 'unknown error'}`);
    if (email.notifications === 'off') parts.push('email notifications off');
    ui.email.textContent = parts.join(' · ');
    ui.email.dataset.status = email.status || '';
  }

  // Who the site says the customer is: the verified token's sub and its context variables (lwicontexts).
  function renderDetails(s) {
    const customer = s.customer || {};
    const rows = [
      ['Authenticated', customer.authenticated ? 'yes' : 'no'],
      ['Customer ID', customer.sub || ''],
    ];
    for (const [name, value] of Object.entries(s.context || {})) {
      rows.push([name, value === null ? '—' : String(value)]);
    }
    ui.details.replaceChildren();
    for (const [name, value] of rows) {
      const row = document.createElement('div');
      const dt = document.createElement('dt');
      const dd = document.createElement('dd');
      dt.textContent = name;
      dd.textContent = value;
      row.append(dt, dd);
      ui.details.append(row);
    }
  }

  function renderHeader() {
    const s = current && current.summary;
    const active = document.activeElement;
    if (!s) {
      ui.customer.textContent = 'Loading…';
      ui.workstream.textContent = '';
      ui.status.textContent = '';
      ui.agent.textContent = '';
      ui.email.textContent = '';
      ui.details.replaceChildren();
      for (const button of actionButtons()) button.hidden = true;
      ui.offer.hidden = true;
      ui.compose.hidden = true;
      ui.composeNote.hidden = true;
      ui.noteForm.hidden = true;
      return;
    }
    const mine = isMine(s);
    const ended = s.ended === true || isEnded(s);
    const isActive = s.status === 'active';
    ui.customer.textContent = customerName(s);
    ui.workstream.textContent = (s.workstream && s.workstream.name) || '';
    ui.status.textContent = statusLabel(s);
    ui.status.dataset.status = s.status;
    if (!s.agent) ui.agent.textContent = 'Unassigned';
    else ui.agent.textContent = mine ? 'Assigned to you' : `Assigned to ${s.agent.name}`;
    renderDetails(s);
    renderEmailState(s);
    renderConversationLabels(s);
    renderReassign(s);
    renderRating(s);

    ui.take.hidden = !(s.status === 'open' && !s.agent);
    const offered = isOffered(s);
    ui.accept.hidden = !offered;
    ui.offer.hidden = !offered;
    renderCountdown();
    ui.park.hidden = !(mine && isActive && isPersistent(s));
    ui.resume.hidden = !(mine && s.status === 'waiting');
    ui.transfer.hidden = !(mine && isActive);
    ui.closeWrapUp.hidden = !(mine && s.status === 'wrap_up');
    ui.end.hidden = !(mine && (isActive || s.status === 'waiting'));
    // A reply typed before the conversation has loaded would have nowhere to go.
    const canReply = mine && isActive && !current.loading;
    ui.noteForm.hidden = current.loading;
    ui.compose.hidden = !canReply;
    ui.composeNote.hidden = canReply;
    if (current.loading) ui.composeNote.textContent = '';
    else if (ended) ui.composeNote.textContent = 'This conversation has ended.';
    else if (!s.agent) ui.composeNote.textContent = 'Take this conversation to reply.';
    else if (!mine) ui.composeNote.textContent = `${s.agent.name} is handling this conversation.`;
    else if (s.status === 'waiting') {
      ui.composeNote.textContent = 'Waiting for the customer to write again. Resume it to reply now.';
    } else ui.composeNote.textContent = '';
    ui.composeNote.hidden = canReply || !ui.composeNote.textContent;

    const started = formatDate(s.started_at);
    ui.divider.textContent = started ? `This conversation · ${started}` : 'This conversation';

    // Keep keyboard users somewhere sensible when the control they were on disappears.
    if (active && active !== document.body && active.closest('[hidden]')) {
      if (canReply) ui.reply.focus();
      else ui.customer.focus();
    }
  }

  function actionButtons() {
    return [ui.take, ui.accept, ui.resume, ui.park, ui.transfer, ui.closeWrapUp, ui.end];
  }

  function renderCountdown() {
    const s = current && current.summary;
    ui.countdown.textContent = isOffered(s) ? `Accept within ${countdown(s)}` : '';
  }

  // Offers run out: the header's countdown and the list items' tick every second while any is pending.
  setInterval(() => {
    if (current && isOffered(current.summary)) renderCountdown();
    for (const [id, li] of items) {
      const span = li.querySelector('.item-offer');
      const s = summaryOf(id);
      if (span && s && isOffered(s)) span.textContent = ` · Offered, ${countdown(s)} left`;
    }
  }, 1000);

  function renderHistory(conversations) {
    ui.history.replaceChildren();
    // The server lists newest first; the thread reads top to bottom, oldest first.
    const others = [...conversations].reverse();
    for (const h of others) {
      const label = `${h.id < current.id ? 'Earlier' : 'Later'} conversation · ${formatDate(h.started_at)}`;
      const details = el('details', { className: 'earlier', dataset: { conversationId: h.id } },
        el('summary', null, label));
      let loaded = false;
      details.addEventListener('toggle', () => {
        if (details.open && !loaded) {
          loaded = true;
          loadEarlierConversation(details, h).catch(() => { loaded = false; });
        }
      });
      ui.history.append(details);
    }
    ui.divider.hidden = others.length === 0;
  }

  async function loadEarlierConversation(details, h) {
    const more = el('button', { type: 'button', className: 'load-earlier', hidden: true }, 'Load earlier messages');
    const log = el('div', { className: 'messages', tabindex: '-1', 'aria-label': details.firstChild.textContent });
    const error = el('p', { className: 'alert', role: 'alert' });
    const loading = el('p', { className: 'loading' }, 'Loading…');
    details.querySelectorAll(':scope > :not(summary)').forEach((n) => n.remove());
    details.append(loading, more, log, error);
    const transcript = new Transcript(h.id, log, more, h);
    more.addEventListener('click', () => transcript.loadEarlier(error));
    try {
      const data = await api('GET', `/conversations/${h.id}`);
      transcript.summary = data.conversation || h;
      transcript.reset(data.messages || [], data.complete);
      if (!transcript.seqs.size) log.append(el('p', { className: 'loading' }, 'No messages.'));
    } catch (err) {
      showError(error, err);
      throw err;
    } finally {
      loading.remove();
    }
  }

  // On a phone the lists and the open conversation are two views; the focus follows the one shown.
  const phone = window.matchMedia('(max-width: 48rem)');

  function showView(view) {
    const changed = app.dataset.view !== view;
    app.dataset.view = view;
    if (!changed || !phone.matches) return;
    if (view === 'conversation') {
      ui.customer.focus();
      return;
    }
    const item = current && document.querySelector(`.sidebar li[data-conversation-id="${current.id}"] button`);
    if (item) item.focus();
    else $('heading-mine').scrollIntoView({ block: 'start' });
  }

  function conversationOffScreen() {
    return phone.matches && app.dataset.view !== 'conversation';
  }

  // The conversation stays open (watched, its draft kept) until another is opened; a reload shows the lists.
  $('back-to-lists').addEventListener('click', () => {
    if (current) unread.delete(current.id);
    history.replaceState(null, '', location.pathname + location.search);
    showView('lists');
    renderLists();
  });

  async function openConversation(id) {
    if (!Number.isInteger(id) || id <= 0) return;
    const token = ++openToken;
    if (current) drafts.set(current.id, ui.reply.value);
    window.ConsoleFiles.clear();
    showTyping(null);
    const summary = summaryOf(id);
    current = {
      id,
      summary,
      transcript: new Transcript(id, freshLog(), ui.loadEarlier, summary),
      loading: true,
      pending: [],
      filling: false,
    };
    unread.delete(id);
    badges.delete(id);
    renderLists();
    history.replaceState(null, '', `#conversation-${id}`);

    ui.reply.value = drafts.get(id) || '';
    ui.noteBody.value = '';
    showError(ui.noteError, null);
    closeCanned();
    showError(ui.actionError, null);
    showError(ui.composeError, null);
    ui.history.replaceChildren();
    ui.divider.hidden = true;
    ui.loadEarlier.hidden = true;
    ui.noSelection.hidden = true;
    ui.section.hidden = false;
    renderHeader();
    sendWatch();
    showView('conversation');

    let data;
    try {
      data = await api('GET', `/conversations/${id}`);
    } catch (err) {
      if (token === openToken) {
        current.loading = false;
        showError(ui.actionError, err);
        if (!current.summary) ui.customer.textContent = 'Conversation unavailable';
      }
      return;
    }
    if (token !== openToken) return;

    const c = current;
    upsertSummary(data.conversation);
    // A conversation frame may have overtaken this response.
    c.summary = summaryOf(id) || (newer(data.conversation, c.summary) ? data.conversation : c.summary);
    c.transcript.summary = c.summary;
    renderHistory(data.history || []);
    c.transcript.reset(data.messages || [], data.complete);
    for (const n of (data.notes || []).concat(c.pendingNotes || [])) c.transcript.insertNote(n);
    c.pendingNotes = [];
    c.loading = false;
    renderHeader();
    renderLists();
    appendMessages(c.pending);
    c.pending = [];
    renderSeen();
    scrollToBottom();
    // Unless the watch is still unconfirmed (its pong fills the gap), this read may predate it.
    if (!fillGapAt || c.transcript.last < (c.summary.last_seq || 0)) fillGap();
  }

  ui.loadEarlier.addEventListener('click', () => {
    if (current && !current.loading) current.transcript.loadEarlier(ui.actionError);
  });

  // ---------------------------------------------------------------- actions

  // Throttled: the widget shows the indicator for 6 s after each frame.
  let typingSentAt = 0;
  ui.reply.addEventListener('input', () => {
    const now = Date.now();
    if (!current || ui.compose.hidden || !ui.reply.value.trim() || now - typingSentAt < 3000) return;
    if (sendFrame({ type: 'typing', conversation_id: current.id })) typingSentAt = now;
  });

  let typingTimer = 0;
  function showTyping(text) {
    clearTimeout(typingTimer);
    ui.typing.textContent = text || '';
    if (text) typingTimer = setTimeout(() => showTyping(null), 6000);
  }

  function onTyping(frame) {
    if (current && current.id === frame.conversation_id && frame.sender === 'customer') {
      showTyping(`${customerName(current.summary)} is typing…`);
    }
  }

  ui.reply.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.compose.requestSubmit();
    }
  });

  ui.compose.addEventListener('submit', async (event) => {
    event.preventDefault();
    const c = current;
    if (!c || c.loading || sending) return;
    const body = ui.reply.value;
    const files = window.ConsoleFiles.pending(c.id);
    if (files.wait) {
      ui.composeError.textContent = files.wait;
      return;
    }
    if (!body.trim() && !files.ids.length) {
      ui.composeError.textContent = 'Write a message first.';
      return;
    }
    const attachments = files.ids.join(' ');
    if (!sendDraft || sendDraft.body !== body || sendDraft.conversationId !== c.id || sendDraft.attachments !== attachments) {
      sendDraft = { body, conversationId: c.id, clientId: newClientId(), attachments };
    }
    sending = true;
    setBusy(ui.send, true);
    showError(ui.composeError, null);
    try {
      const data = await api('POST', `/conversations/${c.id}/messages`,
        { client_id: sendDraft.clientId, body, attachments: files.ids });
      sendDraft = null;
      window.ConsoleFiles.clear(c.id);
      drafts.delete(c.id);
      if (badges.delete(c.id)) renderLists();
      if (c === current) {
        if (ui.reply.value === body) ui.reply.value = '';
        typingSentAt = 0;
        appendMessages([data.message], true);
      }
      onMessage(data.message);
    } catch (err) {
      if (c === current) showError(ui.composeError, err);
    } finally {
      sending = false;
      setBusy(ui.send, false);
    }
  });

  async function act(action, button, body) {
    const c = current;
    if (!c || button.getAttribute('aria-disabled') === 'true') return;
    setBusy(button, true);
    showError(ui.actionError, null);
    try {
      const data = await api('POST', `/conversations/${c.id}/${action}`, body || {});
      upsertSummary(data.conversation);
      if (c === current && newer(data.conversation, c.summary)) {
        c.summary = summaryOf(c.id) || data.conversation;
        c.transcript.summary = c.summary;
        renderHeader();
      }
      renderLists();
    } catch (err) {
      if (c === current) showError(ui.actionError, err);
      // The conversation may have moved on (an offer ran out, someone else took it): show where it is.
      if (err.status === 409) refreshCurrent(c);
    } finally {
      setBusy(button, false);
      refreshMe();
    }
  }

  async function refreshCurrent(c) {
    try {
      const data = await api('GET', `/conversations/${c.id}`);
      if (c !== current || !newer(data.conversation, c.summary)) return;
      upsertSummary(data.conversation);
      c.summary = summaryOf(c.id) || data.conversation;
      c.transcript.summary = c.summary;
      renderHeader();
      renderLists();
    } catch (err) {
      console.warn('Could not reload the conversation', err);
    }
  }

  ui.take.addEventListener('click', () => act('take', ui.take));
  ui.accept.addEventListener('click', () => act('accept', ui.accept));
  ui.park.addEventListener('click', () => act('park', ui.park));
  ui.resume.addEventListener('click', () => act('resume', ui.resume));
  ui.closeWrapUp.addEventListener('click', () => act('close', ui.closeWrapUp));
  ui.end.addEventListener('click', () => ui.endDialog.showModal());
  ui.endCancel.addEventListener('click', () => ui.endDialog.close());
  ui.endConfirm.addEventListener('click', () => {
    ui.endDialog.close();
    act('end', ui.end);
  });

  // The transfer menu: back to the queue, or another agent (shown with their presence).
  function fillTransferOptions() {
    const chosen = ui.transferTo.value;
    const options = [el('option', { value: '' }, 'Back to the queue')];
    for (const a of sortedAgents()) {
      if (me && a.id === me.id) continue;
      options.push(el('option', { value: a.id, dataset: { presence: a.presence } },
        `${a.name} (${presenceLabel(a.presence)})`));
    }
    ui.transferTo.replaceChildren(...options);
    if ([...ui.transferTo.options].some((o) => o.value === chosen)) ui.transferTo.value = chosen;
  }

  ui.transfer.addEventListener('click', () => {
    if (!current || ui.transfer.getAttribute('aria-disabled') === 'true') return;
    ui.transferTo.value = '';
    fillTransferOptions();
    ui.transferDialog.showModal();
    ui.transferTo.focus();
  });
  ui.transferCancel.addEventListener('click', () => ui.transferDialog.close());
  ui.transferConfirm.addEventListener('click', () => {
    const value = ui.transferTo.value;
    ui.transferDialog.close();
    act('transfer', ui.transfer, { agent_id: value === '' ? null : Number(value) });
  });

  // ---------------------------------------------------------------- websocket

  let socket = null;
  let backoff = BACKOFF_MIN_MS;
  let pingTimer = null;
  let reconnectTimer = null;
  let everConnected = false;
  // The server handles a socket's frames in order and subscribes before reading any, so the pong to a
  // ping sent after the handshake (or after a watch) proves that live frames now reach us. HTTP reads made
  // earlier could miss a message stored in between; these mark which pong to resync on. (The lists need
  // none of this: the socket's snapshot is read after it subscribed.)
  let pingsSent = 0;
  let pongsSeen = 0;
  let resyncTeamAt = 0;
  let fillGapAt = 0;

  function sendFrame(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  function ping() {
    if (!sendFrame({ type: 'ping' })) return 0;
    pingsSent += 1;
    return pingsSent;
  }

  function sendWatch() {
    if (current && sendFrame({ type: 'watch', conversation_id: current.id })) fillGapAt = ping();
  }

  function resync(force) {
    if (resyncTeamAt && (force || pongsSeen >= resyncTeamAt)) {
      resyncTeamAt = 0;
      loadTeam();
    }
    if (fillGapAt && (force || pongsSeen >= fillGapAt)) {
      fillGapAt = 0;
      if (current && !current.loading) {
        fillGap();
        loadNotes(current);
      }
    }
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/console/ws`);
    } catch (err) {
      console.warn('Could not open the websocket', err);
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.addEventListener('open', () => {
      backoff = BACKOFF_MIN_MS;
      everConnected = true;
      ui.connection.textContent = '';
      pingsSent = 0;
      pongsSeen = 0;
      clearInterval(pingTimer);
      pingTimer = setInterval(ping, PING_MS);
      snapshotParts = [];
      // Whatever happened while no socket was subscribed was never sent to us: the snapshot brings the
      // lists, and the open conversation and the team view resync over HTTP.
      sendWatch();
      resyncTeamAt = ping();
      fillGapAt = resyncTeamAt;
      // A server that never answers must not leave them stale.
      setTimeout(() => {
        if (socket === ws) resync(true);
      }, PONG_FALLBACK_MS);
    });
    ws.addEventListener('message', (event) => onFrame(event.data));
    // 'error' is always followed by 'close', so reconnecting is handled in one place.
    ws.addEventListener('close', () => {
      if (socket !== ws) return;
      socket = null;
      clearInterval(pingTimer);
      ui.connection.textContent = everConnected ? 'Connection lost. Reconnecting…' : 'Connecting…';
      scheduleReconnect();
    });
  }

  // Jitter spreads the consoles of a whole team reconnecting after a restart or a resync.
  function scheduleReconnect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, backoff / 2 + Math.random() * (backoff / 2));
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  }

  function onFrame(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (frame.type === 'snapshot') {
      snapshotParts.push(frame);
      if (!frame.more) {
        const parts = snapshotParts;
        snapshotParts = [];
        onSnapshot(parts);
      }
    }
    else if (frame.type === 'conversation' && frame.conversation) {
      onConversation(frame.conversation);
      onTeamConversation(frame.conversation);
    }
    else if (frame.type === 'message' && frame.message) onMessage(frame.message);
    else if (frame.type === 'note' && frame.note) onNote(frame.note);
    else if (frame.type === 'notify' && frame.conversation) onNotify(frame.kind, frame.conversation);
    else if (frame.type === 'agent' && frame.agent) onAgent(frame.agent);
    else if (frame.type === 'capacity' && frame.capacity) onCapacity(frame.capacity);
    else if (frame.type === 'typing') onTyping(frame);
    else if (frame.type === 'read') onRead(frame);
    else if (frame.type === 'pong') {
      pongsSeen += 1;
      resync();
    }
    else if (frame.type === 'error' && frame.code === 'session_ended') goToLogin();
    else if (frame.type === 'error') console.warn('Console websocket error:', frame.code, frame.message);
    // The server may have missed live events and closes the socket; the reconnect brings a new snapshot.
    else if (frame.type === 'resync' && socket) socket.close();
  }

  function onConversation(s) {
    // Assignments and returning customers are announced by their own notify frame (onNotify).
    upsertSummary(s);
    // The message frame that raised last_seq is usually right behind this one.
    track(s, GAP_WAIT_MS);
    if (current && current.id === s.id && newer(s, current.summary)) {
      current.summary = summaryOf(s.id) || s;
      current.transcript.summary = current.summary;
      renderHeader();
      if (!current.loading && current.transcript.last < (s.last_seq || 0)) fillGap();
    }
    renderLists();
  }

  function onMessage(m) {
    const id = m.conversation_id;
    // The preview, last_seq and the list's order, whatever order messages arrive in.
    Lists.apply(listState, { type: 'message', message: m });
    relist();
    const s = summaryOf(id);
    const before = seen.get(id);
    if (before !== undefined && m.seq !== before + 1) {
      // The open transcript keeps its own order and fills its own gaps.
      if (current && current.id === id) {
        if (current.loading) current.pending.push(m);
        else appendMessages([m]);
      }
      if (m.seq > before + 1) catchUp(id); // counts this one too, after the ones missed
      // Otherwise already counted: a live frame repeating a caught-up one, or the echo of a send.
      renderLists();
      return;
    }
    if (before !== undefined) seen.set(id, m.seq);
    if (current && current.id === id) {
      if (m.sender === 'customer') showTyping(null);
      if (current.loading) current.pending.push(m);
      else appendMessages([m]);
    }
    if (s && m.sender === 'customer' && (!current || current.id !== id || conversationOffScreen())) unread.add(id);
    if (titleSkips.get(id) === m.seq) titleSkips.delete(id);
    else if (m.sender === 'customer' && lists.mine.ids.includes(id)) notifyIfHidden();
    renderLists();
  }

  // ---------------------------------------------------------------- internal notes

  function onNote(n) {
    const c = current;
    if (!c || c.id !== n.conversation_id) return;
    if (c.loading) {
      (c.pendingNotes ||= []).push(n);
      return;
    }
    const stick = nearBottom();
    if (c.transcript.insertNote(n) && stick) scrollToBottom();
  }

  // Notes written while the socket was away were never sent to us.
  async function loadNotes(c) {
    try {
      const data = await api('GET', `/conversations/${c.id}/notes`);
      if (c === current) for (const n of data.notes || []) onNote(n);
    } catch (err) {
      console.warn('Could not reload the notes', err);
    }
  }

  let noteSending = false;
  ui.noteForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const c = current;
    if (!c || c.loading || noteSending) return;
    const body = ui.noteBody.value;
    if (!body.trim()) {
      ui.noteError.textContent = 'Write a note first.';
      return;
    }
    noteSending = true;
    setBusy(ui.noteSend, true);
    showError(ui.noteError, null);
    try {
      const data = await api('POST', `/conversations/${c.id}/notes`, { body });
      if (c === current) {
        if (ui.noteBody.value === body) ui.noteBody.value = '';
        if (c.transcript.insertNote(data.note)) scrollToBottom();
      }
    } catch (err) {
      if (c === current) showError(ui.noteError, err);
    } finally {
      noteSending = false;
      setBusy(ui.noteSend, false);
    }
  });

  // ---------------------------------------------------------------- canned responses

  // `/` at the start of the reply box lists them, filtered by what follows; arrows pick, Enter or Tab
  // inserts, Escape closes. Loaded once per page and again each time the menu opens after a change.
  let canned = [];
  let cannedLoaded = null;
  let cannedShown = [];
  let cannedActive = 0;

  function loadCanned() {
    cannedLoaded ||= api('GET', '/canned')
      .then((data) => {
        canned = data.canned || [];
      })
      .catch((err) => {
        cannedLoaded = null;
        console.warn('Could not load canned responses', err);
      });
    return cannedLoaded;
  }

  // One per shortcut: the conversation's language before "any", then the agent's own before a shared one,
  // then one for the conversation's workstream before one for every workstream.
  function cannedFor(summary, typed) {
    const lang = ((summary && summary.locale) || '').split('-')[0].toLowerCase();
    const workstream = summary && summary.workstream && summary.workstream.id;
    const best = new Map();
    const rank = (c) => (c.locale && c.locale === lang ? 0 : 4) + (c.shared ? 2 : 0) + (c.workstream_id ? 0 : 1);
    for (const c of canned) {
      if (c.locale && lang && c.locale !== lang) continue;
      if (c.workstream_id && c.workstream_id !== workstream) continue;
      if (!c.shortcut.startsWith(typed)) continue;
      const held = best.get(c.shortcut);
      if (!held || rank(c) < rank(held)) best.set(c.shortcut, c);
    }
    return [...best.values()].sort((a, b) => a.shortcut.localeCompare(b.shortcut));
  }

  function fillPlaceholders(body, summary) {
    const context = (summary && summary.context) || {};
    const values = {
      CustomerName: summary ? customerName(summary) : '',
      AgentName: (me && me.name) || '',
    };
    return body.replace(/\{([A-Za-z0-9_.-]+)\}/g, (whole, key) => {
      if (Object.hasOwn(values, key)) return values[key];
      if (Object.hasOwn(context, key) && context[key] != null) return String(context[key]);
      return whole;
    });
  }

  // What follows a `/` that starts the box, or null when the menu has nothing to do.
  function cannedQuery() {
    const match = /^\/([a-z0-9_-]*)$/i.exec(ui.reply.value.slice(0, ui.reply.selectionEnd));
    return match ? match[1].toLowerCase() : null;
  }

  function closeCanned() {
    ui.cannedMenu.hidden = true;
    ui.reply.removeAttribute('aria-activedescendant');
    cannedShown = [];
  }

  function renderCanned() {
    const typed = cannedQuery();
    if (typed === null || !current) {
      closeCanned();
      return;
    }
    cannedShown = cannedFor(current.summary, typed);
    cannedActive = Math.min(cannedActive, Math.max(cannedShown.length - 1, 0));
    ui.cannedOptions.replaceChildren(...cannedShown.map((c, i) => el('li', {
      id: `canned-${c.id}`,
      role: 'option',
      className: 'canned-option',
      'aria-selected': i === cannedActive ? 'true' : 'false',
      dataset: { index: i },
    }, el('span', { className: 'canned-shortcut' }, `/${c.shortcut}`), ' ',
    el('span', { className: 'canned-body' }, fillPlaceholders(c.body, current.summary)))));
    if (!cannedShown.length) {
      ui.cannedOptions.append(el('li', { className: 'canned-empty', role: 'option', 'aria-disabled': 'true' },
        canned.length ? 'No canned response starts with that.' : 'No canned responses yet.'));
    }
    ui.cannedMenu.hidden = false;
    if (cannedShown.length) ui.reply.setAttribute('aria-activedescendant', `canned-${cannedShown[cannedActive].id}`);
    else ui.reply.removeAttribute('aria-activedescendant');
    ui.cannedStatus.textContent = `${cannedShown.length} canned ${cannedShown.length === 1 ? 'response' : 'responses'}`;
  }

  function insertCanned(index) {
    const c = cannedShown[index];
    if (!c || !current) return;
    ui.reply.value = fillPlaceholders(c.body, current.summary) + ui.reply.value.slice(ui.reply.selectionEnd);
    closeCanned();
    ui.reply.focus();
    ui.reply.setSelectionRange(ui.reply.value.length, ui.reply.value.length);
    ui.cannedStatus.textContent = `Inserted /${c.shortcut}`;
  }

  ui.reply.addEventListener('input', () => {
    if (cannedQuery() === null) {
      closeCanned();
      return;
    }
    if (ui.cannedMenu.hidden) cannedActive = 0;
    loadCanned().then(renderCanned);
  });

  // Capturing, so that Enter picks from an open menu instead of sending.
  ui.reply.addEventListener('keydown', (event) => {
    if (ui.cannedMenu.hidden) return;
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (event.key in moves && cannedShown.length) {
      cannedActive = (cannedActive + moves[event.key] + cannedShown.length) % cannedShown.length;
      renderCanned();
    } else if ((event.key === 'Enter' || event.key === 'Tab') && !event.shiftKey && cannedShown.length) {
      insertCanned(cannedActive);
    } else if (event.key === 'Escape') {
      closeCanned();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);

  ui.cannedOptions.addEventListener('mousedown', (event) => {
    const option = event.target.closest('[data-index]');
    if (!option) return;
    event.preventDefault(); // keeps the focus, and the caret, in the reply box
    insertCanned(Number(option.dataset.index));
  });

  ui.reply.addEventListener('blur', closeCanned);

  // ---------------------------------------------------------------- all conversations (supervisors)

  const SUPERVISING = ['supervisor', 'admin'];
  const TEAM_STATUSES = ['bot', 'open', 'active', 'waiting', 'wrap_up'];
  const team = new Map();
  const teamUi = {
    section: $('team-section'),
    groups: $('team-groups'),
    empty: $('empty-all'),
    reassignBox: $('reassign-box'),
    reassignTo: $('reassign-to'),
    reassign: $('reassign'),
  };

  function supervising() {
    return Boolean(me && SUPERVISING.includes(me.role));
  }

  async function loadTeam() {
    if (!supervising()) return;
    try {
      const data = await api('GET', '/team/conversations');
      team.clear();
      for (const s of data.conversations || []) team.set(s.id, s);
      renderTeam();
    } catch (err) {
      console.warn('Could not load all conversations', err);
    }
  }

  // Every console gets every conversation's changes, so the view stays live without polling.
  function onTeamConversation(s) {
    if (!supervising()) return;
    const held = team.get(s.id);
    if (held && !newer(s, held)) return;
    if (TEAM_STATUSES.includes(s.status)) team.set(s.id, s);
    else team.delete(s.id);
    renderTeam();
  }

  function waitText(s) {
    const since = parseTime(s.status === 'open' ? s.updated_at : s.started_at);
    if (!since) return '';
    const minutes = Math.max(0, Math.floor((Date.now() - since.getTime()) / 60000));
    const span = minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
    return s.status === 'open' ? `waiting ${span}` : `for ${span}`;
  }

  function renderTeam() {
    teamUi.section.hidden = !supervising();
    const groups = new Map();
    for (const s of team.values()) {
      let key = s.agent ? s.agent.name : '';
      if (s.status === 'bot') key = `${s.agent_name || 'Bot'} (bot)`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(s);
    }
    const names = [...groups.keys()].sort((a, b) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b)));
    teamUi.groups.replaceChildren(...names.map((name, i) => {
      const headingId = `team-group-${i}`;
      const items = groups.get(name).sort((a, b) => a.id - b.id).map((s) => el('li', { dataset: { conversationId: s.id } },
        el('button', { type: 'button', className: 'conv-item' },
          el('span', { className: 'item-top' }, el('span', { className: 'item-name' }, customerName(s))),
          el('span', { className: 'item-meta' },
            [s.workstream && s.workstream.name, statusLabel(s), waitText(s)].filter(Boolean).join(' · ')))));
      return el('div', { className: 'team-group' },
        el('h3', { id: headingId }, `${name || 'Queue'} (${items.length})`),
        el('ul', { className: 'conv-list', 'aria-labelledby': headingId }, ...items));
    }));
    teamUi.empty.hidden = team.size > 0;
  }

  teamUi.groups.addEventListener('click', (event) => {
    const li = event.target.closest('li[data-conversation-id]');
    if (li && event.target.closest('button')) openConversation(Number(li.dataset.conversationId));
  });

  function renderReassign(s) {
    const show = supervising() && ['open', 'active'].includes(s.status);
    teamUi.reassignBox.hidden = !show;
    if (!show) return;
    const chosen = teamUi.reassignTo.value;
    const options = [el('option', { value: '' }, 'Queue')];
    for (const a of sortedAgents()) {
      if (s.agent && a.id === s.agent.id) continue;
      options.push(el('option', { value: a.id }, `${a.name} (${presenceLabel(a.presence)})`));
    }
    teamUi.reassignTo.replaceChildren(...options);
    if ([...teamUi.reassignTo.options].some((o) => o.value === chosen)) teamUi.reassignTo.value = chosen;
  }

  teamUi.reassign.addEventListener('click', () => {
    const value = teamUi.reassignTo.value;
    act('reassign', teamUi.reassign, { agent_id: value ? Number(value) : null });
  });

  // ---------------------------------------------------------------- CSAT

  function renderRating(s) {
    const box = $('conv-rating');
    const r = s.rating;
    box.hidden = !r;
    if (!r) return;
    box.replaceChildren(el('span', { className: 'rating-score' }, `Customer rating: ${r.score} of 5`),
      r.comment ? el('span', { className: 'rating-comment' }, ` · “${r.comment}”`) : null);
  }

  // ---------------------------------------------------------------- reports (supervisors)

  function seconds(value) {
    if (value == null) return '–';
    return value < 60 ? `${Math.round(value)} s` : `${Math.round(value / 60)} min`;
  }

  // A table with a bar for the CSAT average: the bar's width is set through the CSSOM (CSP).
  function renderReport(rows) {
    if (!rows.length) return el('p', {}, 'No conversations in that range.');
    const head = ['Day', 'Name', 'Conversations', 'Ended', 'Queue wait', 'First response', 'Resolution', 'Parked',
      'CSAT'];
    return el('table', { className: 'report' },
      el('caption', { className: 'visually-hidden' }, 'Report'),
      el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, ...rows.map((r) => {
        const bar = el('span', { className: 'csat-bar' });
        bar.style.setProperty('--csat', String((r.csat_average || 0) / 5));
        return el('tr', {},
          el('td', {}, r.day), el('td', {}, r.name), el('td', {}, String(r.conversations)),
          el('td', {}, String(r.ended)), el('td', {}, seconds(r.queue_wait_seconds)),
          el('td', {}, seconds(r.first_response_seconds)), el('td', {}, seconds(r.resolution_seconds)),
          el('td', {}, r.parked ? `${seconds(r.parked_seconds)} (${r.parked})` : '–'),
          el('td', {}, r.csat_average == null ? '–' : `${r.csat_average} (${r.ratings})`, r.ratings ? bar : null));
      })));
  }

  $('report-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const query = new URLSearchParams({ by: $('report-by').value });
    if ($('report-since').value) query.set('since', $('report-since').value);
    if ($('report-until').value) query.set('until', $('report-until').value);
    showError($('report-error'), null);
    try {
      const data = await api('GET', `/reports?${query}`);
      $('report-output').replaceChildren(renderReport(data.rows || []));
      $('report-output').tabIndex = 0; // it may scroll sideways: the keyboard must reach it
      const csv = $('report-csv');
      csv.href = `${API}/reports?${query}&format=csv`;
      csv.hidden = false;
    } catch (err) {
      showError($('report-error'), err);
    }
  });

  // ---------------------------------------------------------------- labels

  let allLabels = [];
  const labelUi = {
    chips: $('conv-labels'),
    picker: $('label-picker'),
    options: $('label-options'),
    error: $('label-error'),
  };

  // The colour is set through the CSSOM (the CSP allows no style attributes); the text is dark or light
  // by the colour's luminance, so every label stays readable.
  function labelChip(label, tag) {
    const hex = /^#[0-9a-f]{6}$/i.test(label.colour) ? label.colour : '#5b6770';
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    const light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.18;
    const node = el(tag, { className: `label-chip ${light ? 'label-on-light' : 'label-on-dark'}` }, label.name);
    node.style.setProperty('--label-colour', hex);
    return node;
  }

  function labelChips(labels) {
    if (!labels || !labels.length) return null;
    return el('span', { className: 'label-chips' }, ...labels.map((label) => labelChip(label, 'span')));
  }

  function renderConversationLabels(s) {
    const on = new Set((s.labels || []).map((label) => label.id));
    labelUi.chips.replaceChildren(...(s.labels || []).map((label) => labelChip(label, 'li')));
    labelUi.picker.hidden = !allLabels.length;
    const boxes = allLabels.map((label) => {
      const id = `label-option-${label.id}`;
      return el('div', { className: 'label-option' },
        el('input', { type: 'checkbox', id, value: label.id, checked: on.has(label.id) }),
        el('label', { for: id }, labelChip(label, 'span')));
    });
    const active = document.activeElement;
    const focusedId = active && active.closest && active.closest('#label-options') ? active.id : null;
    labelUi.options.replaceChildren(labelUi.options.querySelector('legend'), ...boxes);
    if (focusedId) $(focusedId).focus();
  }

  async function loadLabels() {
    try {
      allLabels = (await api('GET', '/labels')).labels || [];
    } catch (err) {
      console.warn('Could not load the labels', err);
      return;
    }
    searchUi.label.replaceChildren(searchUi.label.firstElementChild,
      ...allLabels.map((label) => el('option', { value: label.id }, label.name)));
    if (current && current.summary) renderConversationLabels(current.summary);
  }

  labelUi.options.addEventListener('change', async () => {
    const c = current;
    if (!c) return;
    const ids = [...labelUi.options.querySelectorAll('input:checked')].map((box) => Number(box.value));
    showError(labelUi.error, null);
    try {
      const data = await api('PUT', `/conversations/${c.id}/labels`, { label_ids: ids });
      if (c === current) {
        c.summary = { ...c.summary, labels: data.labels };
        renderConversationLabels(c.summary);
      }
    } catch (err) {
      if (c === current) showError(labelUi.error, err);
    }
  });

  // ---------------------------------------------------------------- search

  const searchUi = {
    form: $('search'),
    text: $('search-text'),
    customer: $('search-customer'),
    status: $('search-status'),
    label: $('search-label'),
    since: $('search-since'),
    until: $('search-until'),
    section: $('search-section'),
    error: $('search-error'),
    count: $('search-status-text'),
    results: $('search-results'),
    clear: $('search-clear'),
  };
  let searchToken = 0;

  // The server marks matches as segments; they become <mark> elements here, text always as text.
  function snippetNode(segments) {
    return el('span', { className: 'item-preview search-snippet' },
      ...segments.map((part) => (part.match ? el('mark', {}, part.text) : part.text)));
  }

  function renderResult(r) {
    const s = r.conversation;
    const preview = r.snippet ? snippetNode(r.snippet) : el('span', { className: 'item-preview' }, previewText(s));
    return el('li', { dataset: { conversationId: s.id } },
      el('button', { type: 'button', className: 'conv-item' },
        el('span', { className: 'item-top' },
          el('span', { className: 'item-name' }, customerName(s)),
          timeElement((r.message && r.message.created_at) || s.updated_at)),
        preview,
        el('span', { className: 'item-meta' },
          [s.workstream && s.workstream.name, statusLabel(s), s.agent && s.agent.name].filter(Boolean).join(' · ')),
        labelChips(s.labels)));
  }

  searchUi.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    const fields = { q: searchUi.text, customer: searchUi.customer, status: searchUi.status,
      label: searchUi.label, since: searchUi.since, until: searchUi.until };
    for (const [name, input] of Object.entries(fields)) if (input.value.trim()) query.set(name, input.value.trim());
    if (![...query.keys()].length) {
      searchUi.text.focus();
      return;
    }
    const token = ++searchToken;
    const button = searchUi.form.querySelector('button[type="submit"]');
    setBusy(button, true);
    showError(searchUi.error, null);
    searchUi.section.hidden = false;
    try {
      const data = await api('GET', `/search?${query}`);
      if (token !== searchToken) return;
      const results = data.results || [];
      searchUi.results.replaceChildren(...results.map(renderResult));
      searchUi.count.textContent = results.length
        ? `${results.length} ${results.length === 1 ? 'conversation' : 'conversations'} found`
        : 'Nothing found.';
    } catch (err) {
      if (token === searchToken) {
        searchUi.results.replaceChildren();
        searchUi.count.textContent = '';
        showError(searchUi.error, err);
      }
    } finally {
      setBusy(button, false);
    }
  });

  searchUi.results.addEventListener('click', (event) => {
    const li = event.target.closest('li[data-conversation-id]');
    if (li && event.target.closest('button')) openConversation(Number(li.dataset.conversationId));
  });

  searchUi.clear.addEventListener('click', () => {
    searchToken += 1;
    searchUi.form.reset();
    searchUi.results.replaceChildren();
    searchUi.section.hidden = true;
    searchUi.text.focus();
  });

  // ---------------------------------------------------------------- start

  function start() {
    window.ConsoleFiles.mount(ui.compose, ui.reply, () => current && current.id);
    document.body.dataset.notifications = '0';
    renderNotificationButton();
    ui.connection.textContent = 'Connecting…';
    loadLabels();
    connect();
  }

  // Once the first snapshot has said who I am (the team view loads on the pong that follows it).
  function started() {
    $('reports-section').hidden = !supervising();
    openFromHash();
  }

  // The hash names the open conversation, so a reload or a shared link comes back to it.
  function openFromHash() {
    const match = /^#conversation-(\d+)$/.exec(location.hash);
    const id = match && Number(match[1]);
    if (id && (!current || current.id !== id)) openConversation(id);
  }

  window.addEventListener('hashchange', openFromHash);

  start();
})();
