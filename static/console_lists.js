// The console's lists as data, without the DOM: built from the server's `snapshot` and kept current by
// the live frames that follow it. console.js renders them; e2e/test_console_lists.py runs this same
// file in Chromium against the server's own fresh snapshots (Zulip's verify_action idea).
//
// Ordering: a conversation summary carries a `version` the server raises with every change it
// announces, so a summary older than the one held (a frame queued before the snapshot was read, or one
// overtaken on its way between server processes) is ignored. Messages and read positions only ever grow
// (by seq), so they are merged whatever their order.
'use strict';

(() => {
  const LISTS = ['mine', 'waiting', 'queue', 'recent'];
  // Versions of conversations that left the lists, so a late frame cannot bring one back; the oldest go.
  const FORGOTTEN_CAP = 5000;

  function create() {
    return {
      me: null,
      capacity: null,
      limits: { queue: 50, recent: 20 },
      agents: new Map(), // id -> Agent
      entries: new Map(), // id -> {version, list, summary}; summary null for queue ids known only by id
      forgotten: new Map(), // id -> version
    };
  }

  function classify(state, s) {
    if (s.status === 'open' && !s.agent) return 'queue';
    if (!state.me || !s.agent || s.agent.id !== state.me.id) return null;
    if (s.status === 'wrap_up' || s.status === 'closed') return 'recent';
    return s.status === 'waiting' ? 'waiting' : 'mine';
  }

  function readSeq(s) {
    return (s.customer_read && s.customer_read.seq) || 0;
  }

  // What only grows survives a newer summary that was built before it arrived.
  function keepGrowing(fresh, old) {
    const s = { ...fresh };
    if (old.last_message && (!s.last_message || s.last_message.seq < old.last_message.seq)) {
      s.last_message = old.last_message;
    }
    s.last_seq = Math.max(s.last_seq || 0, old.last_seq || 0);
    if (old.updated_at && (!s.updated_at || old.updated_at > s.updated_at)) s.updated_at = old.updated_at;
    if (readSeq(old) > readSeq(s)) s.customer_read = old.customer_read;
    s.read_seq = Math.max(s.read_seq || 0, old.read_seq || 0);
    return s;
  }

  function heldVersion(state, id) {
    const entry = state.entries.get(id);
    if (entry) return entry.version;
    return state.forgotten.has(id) ? state.forgotten.get(id) : -1;
  }

  function forget(state, id, version) {
    state.entries.delete(id);
    state.forgotten.delete(id);
    state.forgotten.set(id, version);
    if (state.forgotten.size > FORGOTTEN_CAP) state.forgotten.delete(state.forgotten.keys().next().value);
  }

  // A conversation's summary (from a frame, a snapshot or an HTTP answer). Returns the list it is in now
  // (null: none of mine), or undefined when it was not newer than what is held.
  function applySummary(state, s) {
    const entry = state.entries.get(s.id);
    const held = heldVersion(state, s.id);
    // A queue entry known only by id takes its summary at the same version.
    if (s.version < held || (s.version === held && !(entry && !entry.summary))) return undefined;
    const summary = entry && entry.summary ? keepGrowing(s, entry.summary) : s;
    const list = classify(state, summary);
    if (list) {
      state.forgotten.delete(s.id);
      state.entries.set(s.id, { version: s.version, list, summary });
    } else {
      forget(state, s.id, s.version);
    }
    if (list === 'recent') trimRecent(state);
    return list;
  }

  function sortedIds(state, list) {
    const ids = [];
    for (const [id, entry] of state.entries) if (entry.list === list) ids.push(id);
    const summary = (id) => state.entries.get(id).summary;
    if (list === 'queue') return ids.sort((a, b) => a - b);
    const key = list === 'recent' ? 'ended_at' : 'updated_at';
    return ids.sort((a, b) => {
      const ka = summary(a)[key] || '';
      const kb = summary(b)[key] || '';
      if (ka !== kb) return ka < kb ? 1 : -1;
      return b - a;
    });
  }

  function trimRecent(state) {
    const ids = sortedIds(state, 'recent');
    for (const id of ids.slice(state.limits.recent)) forget(state, id, state.entries.get(id).version);
  }

  // A message of a listed conversation: the preview shows what people wrote, not automated messages.
  function applyMessage(state, m) {
    const entry = state.entries.get(m.conversation_id);
    if (!entry || !entry.summary) return false;
    const s = entry.summary;
    s.last_seq = Math.max(s.last_seq || 0, m.seq);
    if (m.sender !== 'system' && (!s.last_message || s.last_message.seq < m.seq)) {
      s.last_message = m;
      if (!s.updated_at || m.created_at > s.updated_at) s.updated_at = m.created_at;
    }
    return true;
  }

  function applyRead(state, frame) {
    const entry = state.entries.get(frame.conversation_id);
    if (!entry || !entry.summary || frame.seq <= readSeq(entry.summary)) return false;
    entry.summary.customer_read = { seq: frame.seq, at: frame.read_at || null };
    entry.summary.read_seq = Math.max(entry.summary.read_seq || 0, frame.seq);
    return true;
  }

  // Anyone's presence or name; a disabled agent leaves the team. Summaries show their new name too.
  // Agents and capacity have no version: their frames count in the order they arrive, which is the
  // order of their commits as long as one server process published them.
  function applyAgent(state, a) {
    if (a.disabled) state.agents.delete(a.id);
    else state.agents.set(a.id, a);
    if (state.me && state.me.id === a.id) {
      state.me = { ...state.me, name: a.name, presence: a.presence, presence_changed_at: a.presence_changed_at };
    }
    for (const entry of state.entries.values()) {
      const s = entry.summary;
      if (s && s.agent && s.agent.id === a.id && s.agent.name !== a.name) {
        entry.summary = { ...s, agent: { ...s.agent, name: a.name }, agent_name: a.name };
      }
    }
    return true;
  }

  // A whole snapshot (its parts joined): everything held before is replaced.
  function load(state, parts) {
    const first = parts[0];
    const fresh = create();
    fresh.me = first.agent;
    fresh.capacity = first.capacity;
    fresh.limits = first.limits;
    for (const part of parts) {
      for (const a of part.agents || []) fresh.agents.set(a.id, a);
      for (const name of LISTS) for (const s of part[name] || []) applySummary(fresh, s);
    }
    for (const part of parts) {
      for (const [id, version] of part.queue_rest || []) {
        if (heldVersion(fresh, id) < version) {
          fresh.forgotten.delete(id);
          fresh.entries.set(id, { version, list: 'queue', summary: null });
        }
      }
    }
    Object.assign(state, fresh);
  }

  // The frames that change the lists; returns whether this one did anything to them.
  function apply(state, frame) {
    switch (frame.type) {
      case 'conversation':
      case 'notify':
        return applySummary(state, frame.conversation) !== undefined;
      case 'message':
        return applyMessage(state, frame.message);
      case 'read':
        return applyRead(state, frame);
      case 'agent':
        return applyAgent(state, frame.agent);
      case 'capacity':
        state.capacity = frame.capacity;
        return true;
      default:
        return false;
    }
  }

  // The queue's first `limits.queue` entries are shown; the ones among them known only by id need
  // their summaries fetched (their order is by id, so the window moves onto them as the queue empties).
  function queueWindow(state) {
    const ids = sortedIds(state, 'queue');
    return { ids: ids.slice(0, state.limits.queue), more: Math.max(0, ids.length - state.limits.queue) };
  }

  function missing(state) {
    return queueWindow(state).ids.filter((id) => !state.entries.get(id).summary);
  }

  // Of `ids` asked for with missing(), the ones the server no longer has (erased meanwhile).
  function drop(state, ids) {
    for (const id of ids) {
      const entry = state.entries.get(id);
      if (entry && !entry.summary) forget(state, id, entry.version);
    }
  }

  // Everyone who can work, by name.
  function team(state) {
    return [...state.agents.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)) || a.id - b.id);
  }

  // What is shown: each list's summaries in order, how many more the queue has, the team by name.
  function view(state) {
    const summaries = (ids) => ids.map((id) => state.entries.get(id).summary);
    const queue = queueWindow(state);
    return {
      me: state.me,
      capacity: state.capacity,
      mine: summaries(sortedIds(state, 'mine')),
      waiting: summaries(sortedIds(state, 'waiting')),
      queue: summaries(queue.ids),
      queue_more: queue.more,
      recent: summaries(sortedIds(state, 'recent')),
      agents: team(state),
    };
  }

  function summary(state, id) {
    const entry = state.entries.get(id);
    return (entry && entry.summary) || null;
  }

  function listOf(state, id) {
    const entry = state.entries.get(id);
    return entry ? entry.list : null;
  }

  window.ConsoleLists = {
    create, load, apply, applySummary, view, team, missing, drop, summary, listOf, sortedIds, queueWindow,
  };
})();
