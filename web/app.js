// app.js -- the page: login, the conversation list, one open conversation,
// the composer. The session is conn.js's, the history store.js's, groups
// groups.js's, the scroll-back history.js's, receipts, typing and presence
// signals.js's; this file only turns their events into DOM and the user's
// actions into calls.
//
// A conversation is named by its key (store.js): the other user's id, or
// 'g' and a group's id.

import * as P from './proto.js';
import { ChatConnection, newCid } from './conn.js';
import { openStore, groupKey, keyGroup, parseKey } from './store.js';
import { typeOfFile, sniffMime, formatBytes, TYPE_NAMES } from './media.js';
import { Groups } from './groups.js';
import { ScrollBack } from './history.js';
import { Signals } from './signals.js';
import { $, el, showAlert, clearAlerts, parseUserId } from './ui.js';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder(); // invalid UTF-8 becomes U+FFFD

const LS_USER = 'chat.user'; // the last user id that logged in
const LS_MAX_FRAME = 'chat.maxFrame'; // the server's max_frame, from its last WELCOME
const LS_DEVICE = 'chat.device'; // this browser profile's device name (HELLO with CONV)
const SS_SESSION = 'chat.session'; // this tab is logged in (without password): resume on reload
const PROGRESS_MIN = 64 << 10; // messages this large show an upload bar
const LOCK_WAIT_MS = 2000; // how long a login waits for another tab (or the page before a reload) to let go of the user

const app = {
  user: 0,
  store: null,
  conn: null,
  peer: 0, // the open conversation's key, 0 = none
  urls: [], // Blob URLs of the open conversation, revoked when it closes
  sendChain: Promise.resolve(), // own messages are stored and queued in order
  unlock: null, // releases this tab's hold on the user (lockUser)
  convsDirty: false,
};
const groups = new Groups(app, {
  refresh: () => refreshConvs(),
  line: (key, text) => addLine(key, text),
  open: (key) => openConv(key),
  head: () => showHead(),
});
const scrollBack = new ScrollBack(app, (rec) => messageEl(rec));
const signals = new Signals(app, {
  refresh: () => refreshConvs(),
  head: () => showHead(),
  ticks: () => {
    for (const li of $('messages').querySelectorAll('li.msg.out')) showTick(li);
  },
  visible: () => convVisible(app.peer),
  readUpTo: (key, upto) => {
    const store = app.store;
    if (key === app.peer && convVisible(key)) return;
    store.readUpTo(key, upto)
      .then((changed) => changed && store === app.store && refreshConvs())
      .catch((e) => showAlert(`Cannot update the history: ${e.message}`));
  },
  members: (gid) => groups.get(gid)?.members || 0,
  unread: async () => (app.store ? (await app.store.conversations()).filter((c) => c.unread).map((c) => c.peer) : []),
});

// ------------------------------------------------------------------ helpers

function maxFrame() {
  return (app.conn && app.conn.maxFrame) || Number(localStorage.getItem(LS_MAX_FRAME)) || 0;
}

function showMaxFrame() {
  const m = maxFrame();
  $('composer-hint').textContent =
    'Enter sends, Shift+Enter starts a new line.' + (m ? ` Files up to ${formatBytes(m)}.` : '');
}

const isNarrow = () => window.matchMedia('(max-width: 700px)').matches;

// Conversation key is open and on screen (the page is visible; at phone
// width, the conversation and not the list).
const convVisible = (key) => key !== 0 && key === app.peer && !!app.store && !$('chat-view').hidden &&
  document.visibilityState === 'visible' && (!isNarrow() || $('chat-view').classList.contains('show-conv'));

// This browser profile's device name: "web-" and 8 random [a-z0-9], made
// once and kept in localStorage (shared by the profile's tabs, which the
// one-tab-per-user lock keeps to one per user). The server keeps, per
// device, what it has received.
function deviceName() {
  const kept = localStorage.getItem(LS_DEVICE);
  if (kept && P.isDeviceName(kept)) return kept;
  const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let name = 'web-';
  while (name.length < 12) {
    const [b] = crypto.getRandomValues(new Uint8Array(1));
    if (b < 252) name += abc[b % 36]; // 252 = 7 x 36: no letter more likely than another
  }
  localStorage.setItem(LS_DEVICE, name);
  return name;
}

// -------------------------------------------------------------------- login

// One tab per user in a browser: tabs of one user would share its history
// and outbox, and store every message twice. Resolves true once this tab
// holds the user (until logout or the tab closes), false when another tab
// keeps it.
function lockUser(user) {
  if (!navigator.locks) return Promise.resolve(true);
  return new Promise((resolve) => {
    navigator.locks
      .request(`chat-user-${user}`, { signal: AbortSignal.timeout(LOCK_WAIT_MS) }, () => {
        resolve(true);
        return new Promise((release) => (app.unlock = release));
      })
      .catch(() => resolve(false));
  });
}

async function login(user, password) {
  $('login-error').textContent = '';
  if (!(await lockUser(user))) {
    $('login-error').textContent = `User ${user} is logged in in another tab of this browser; use that tab, or log out there first.`;
    return;
  }
  let store;
  try {
    store = await openStore(user);
  } catch (e) {
    if (app.unlock) app.unlock();
    $('login-error').textContent = `This browser cannot keep the history (${e.message || e}); log in from a normal window.`;
    return;
  }
  localStorage.setItem(LS_USER, String(user));
  if (password) sessionStorage.removeItem(SS_SESSION);
  else sessionStorage.setItem(SS_SESSION, String(user));
  app.user = user;
  app.store = store;
  app.peer = 0;
  signals.reset();
  clearAlerts();
  $('login-view').hidden = true;
  $('chat-view').hidden = false;
  $('logout').hidden = false;
  $('whoami').hidden = false;
  $('whoami').textContent = `User ${user}`;
  const device = deviceName();
  $('device').textContent = `Device ${device}`;
  showMaxFrame();
  groups.load(await store.conversations());

  const conn = new ChatConnection({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
    user,
    password: utf8.encode(password),
    device,
    lastMsgId: await store.lastMsgId(),
    onMessage: (m) => receive(store, m),
  });
  app.conn = conn;
  conn.addEventListener('state', (ev) => {
    showState(ev.detail);
    if (ev.detail.state !== 'ready') signals.onLost();
  });
  conn.addEventListener('welcome', (ev) => {
    localStorage.setItem(LS_MAX_FRAME, String(ev.detail.maxFrame));
    showMaxFrame();
    // The name matters only where the server keeps devices (CONV).
    $('device').hidden = !ev.detail.conv;
    if (!ev.detail.acks) showAlert('The server does not acknowledge messages: a message may be lost if the connection breaks.');
    // LIST first (conn.js's onBadType counts on it), then the scroll-back.
    groups.onWelcome(ev.detail);
    scrollBack.onWelcome();
    signals.onWelcome(ev.detail);
  });
  conn.addEventListener('receipt', (ev) => signals.onReceipt(ev.detail));
  conn.addEventListener('typing', (ev) => signals.onTyping(ev.detail));
  conn.addEventListener('presence', (ev) => signals.onPresence(ev.detail));
  conn.addEventListener('presence-denied', (ev) => signals.onDenied(ev.detail));
  conn.addEventListener('group-event', (ev) => groups.onEvent(ev.detail));
  conn.addEventListener('unsupported', (ev) => {
    groups.onUnsupported(ev.detail.kinds);
    scrollBack.onUnsupported(ev.detail.kinds);
  });
  conn.addEventListener('posted', (ev) => posted(store, ev.detail));
  conn.addEventListener('acked', (ev) => settle(store, ev.detail.key, { status: 'sent', pending: undefined }));
  conn.addEventListener('refused', (ev) => {
    const { key, name, reason } = ev.detail;
    // (an id POSTED gave it names no message now)
    settle(store, key, { status: 'failed', error: `${name}: ${reason}`, pending: undefined, msgId: undefined });
  });
  conn.addEventListener('progress', (ev) => showProgress(ev.detail));
  conn.addEventListener('server-error', (ev) => {
    const e = ev.detail;
    showAlert(`Server error ${e.name}: ${e.reason || 'no reason given'}`);
  });
  conn.addEventListener('fatal', (ev) => {
    const code = ev.detail.reason.split(':')[0];
    if (code === 'AUTH' || code === 'NOLOGIN') logout(`Login refused: ${ev.detail.reason}`);
  });

  // Own messages an earlier visit did not get acknowledged go first, in order.
  for (const rec of await store.pending()) queueRecord(rec);
  conn.start();
  await renderConvs();
  const last = parseKey(localStorage.getItem(`chat.peer.${user}`));
  if (last && !isNarrow()) await openConv(last);
  else $('new-peer').focus();
}

function logout(why = '') {
  signals.stopTyping();
  if (app.conn) app.conn.stop();
  signals.reset();
  delete document.documentElement.dataset.signals;
  if (app.store) app.store.close();
  if (app.unlock) app.unlock();
  revokeUrls();
  groups.hidePanel();
  scrollBack.close();
  app.conn = app.store = app.unlock = null;
  app.peer = app.user = 0;
  sessionStorage.removeItem(SS_SESSION);
  $('chat-view').hidden = true;
  $('login-view').hidden = false;
  $('logout').hidden = true;
  $('whoami').hidden = true;
  $('device').hidden = true;
  $('retry').hidden = true;
  $('messages').replaceChildren();
  $('conv-list').replaceChildren();
  $('conv-title').textContent = 'Pick a conversation';
  $('typing').hidden = true;
  $('conv-sub').hidden = $('group-toggle').hidden = $('left-note').hidden = true;
  $('composer-box').hidden = true;
  $('new-group').hidden = true;
  setStatus('idle', 'Not connected');
  clearAlerts();
  $('login-error').textContent = why;
  $('login-password').value = '';
  ($('login-user').value ? $('login-password') : $('login-user')).focus();
}

function setStatus(state, text) {
  const s = $('status');
  s.dataset.state = state;
  s.textContent = text;
}

function showState({ state, delayMs, reason }) {
  $('retry').hidden = state !== 'backoff';
  if (state === 'connecting') setStatus(state, 'Connecting…');
  else if (state === 'hello') setStatus(state, 'Logging in…');
  else if (state === 'ready') setStatus('online', 'Online');
  else if (state === 'backoff')
    setStatus(state, `Offline (${reason}); retrying in ${Math.max(1, Math.round(delayMs / 1000))} s`);
  else if (state === 'stopped') setStatus(state, reason ? `Disconnected (${reason})` : 'Disconnected');
}

// ------------------------------------------------------------ conversations

async function renderConvs() {
  if (!app.store) return;
  const store = app.store;
  const convs = await store.conversations();
  if (store !== app.store) return;
  const list = $('conv-list');
  const focused = document.activeElement && document.activeElement.dataset.peer;
  list.replaceChildren(
    ...convs.map((c) => {
      const unread = c.peer === app.peer ? 0 : c.unread;
      const gid = keyGroup(c.peer);
      const left = gid && groups.get(gid)?.left;
      const pres = gid ? null : signals.presenceOf(c.peer);
      const b = el(
        'button',
        { type: 'button', class: 'conv-item', 'data-peer': String(c.peer) },
        el('span', { class: 'conv-name' }, gid ? groups.label(gid) : `User ${c.peer}`,
          gid ? el('span', { class: 'tag', text: left ? 'left' : 'group' }) : null,
          pres ? el('span', { class: 'presence', 'data-state': pres.state, title: pres.text || 'offline',
            'aria-label': pres.text || 'offline' }) : null),
        el('span', { class: 'conv-preview', text: c.preview || '' }),
        unread ? el('span', { class: 'badge', text: String(unread), 'aria-label': `${unread} unread` }) : null,
      );
      if (left) b.classList.add('left');
      if (c.peer === app.peer) b.setAttribute('aria-current', 'true');
      b.addEventListener('click', () => openConv(c.peer));
      return el('li', {}, b);
    }),
  );
  $('conv-empty').hidden = convs.length > 0;
  signals.setContacts(convs.filter((c) => !keyGroup(c.peer)).map((c) => c.peer));
  if (focused) list.querySelector(`[data-peer="${focused}"]`)?.focus();
}

// Coalesce list refreshes: at most one waiting.
function refreshConvs() {
  if (app.convsDirty) return;
  app.convsDirty = true;
  requestAnimationFrame(() => {
    app.convsDirty = false;
    renderConvs().catch((e) => showAlert(`Cannot read the history: ${e.message}`));
  });
}

function revokeUrls() {
  for (const u of app.urls) URL.revokeObjectURL(u);
  app.urls = [];
}

// Open the conversation with key (a user id, or groupKey).
async function openConv(key) {
  const store = app.store;
  await store.ensureConv(key);
  const recs = await store.list(key);
  if (store !== app.store) return;
  if (app.peer !== key) {
    groups.hidePanel();
    signals.stopTyping();
  }
  app.peer = key;
  localStorage.setItem(`chat.peer.${app.user}`, String(key));
  revokeUrls();
  showHead();
  $('messages').replaceChildren(...recs.map(messageEl));
  $('chat-view').classList.add('show-conv');
  scrollToEnd(true);
  const gid = keyGroup(key);
  scrollBack.open(key, !(gid && groups.get(gid)?.left));
  signals.showTyping();
  signals.opened(key);
  await store.markRead(key);
  await renderConvs();
  ($('composer-box').hidden ? $('messages') : $('text')).focus();
}

// The open conversation's header (a group's name, members, its panel's
// button) and composer (none in a group this user left).
function showHead() {
  const key = app.peer;
  if (!key) return;
  const gid = keyGroup(key);
  const g = gid ? groups.get(gid) : null;
  const left = !!(g && g.left);
  $('conv-title').textContent = gid ? groups.label(gid) : `User ${key}`;
  const sub = $('conv-sub');
  if (gid) {
    sub.hidden = false;
    sub.textContent = left ? 'You are no longer a member' : g && g.members ? `${g.members} ${g.members === 1 ? 'member' : 'members'}` : 'Group';
    delete sub.dataset.presence;
  } else {
    // The peer's presence: "online", "last seen …", or nothing.
    const p = signals.presenceOf(key);
    sub.hidden = !p || !p.text;
    sub.textContent = p ? p.text : '';
    if (p) sub.dataset.presence = p.state;
    else delete sub.dataset.presence;
  }
  $('group-toggle').hidden = !gid || left || !groups.supported;
  $('composer-box').hidden = left;
  $('left-note').hidden = !left;
}

function closeConv() {
  $('chat-view').classList.remove('show-conv');
  const b = $('conv-list').querySelector(`[data-peer="${app.peer}"]`);
  (b || $('new-peer')).focus();
}

// ----------------------------------------------------------------- messages

const STATUS_MARKS = {
  pending: ['…', 'sending'],
  sent: ['✓', 'the server has it'],
  failed: ['!', 'not sent'],
};
const ELSEWHERE_LABEL = 'sent from another device';
// Receipts (SIGNALS): what the marks of the peer (or the group's members) say.
const RECEIPT_MARKS = {
  delivered: ['✓', 'delivered'],
  read: ['✓✓', 'read'],
};

function timeText(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function bodyEl(rec) {
  if (rec.type === P.TEXT) return el('p', { class: 'text', text: rec.text });
  const url = URL.createObjectURL(rec.blob);
  app.urls.push(url);
  const who = keyGroup(rec.peer) ? (rec.dir === 'in' ? `from user ${rec.author}` : 'to the group')
    : rec.dir === 'in' ? `from user ${rec.peer}` : `to user ${rec.peer}`;
  if (rec.type === P.PICTURE) return el('img', { class: 'media picture', src: url, alt: `Picture ${who}` });
  const tag = rec.type === P.VOICE ? 'audio' : 'video';
  return el(tag, { class: `media ${tag}`, src: url, controls: true, preload: 'metadata', 'aria-label': `${TYPE_NAMES[rec.type]} ${who}` });
}

// A message's element. data-id: its record's id (h and the server id for a
// page of the server's history: not stored); data-msg-id: its server id.
function messageEl(rec) {
  if (rec.dir === 'sys') {
    return el('li', { class: 'msg sys', 'data-id': String(rec.id) },
      el('p', { class: 'sys-text', text: rec.text }, ' ',
        el('time', { dateTime: new Date(rec.ts).toISOString(), text: timeText(rec.ts) })));
  }
  const li = el('li', {
    class: `msg ${rec.dir}`,
    'data-id': String(rec.id),
    'data-type': String(rec.type),
    'data-size': String(rec.size),
    'data-status': rec.status,
  });
  if (rec.msgId) li.dataset.msgId = rec.msgId;
  // (the tick rule's fallback, used only while the id is not known: signals.js)
  if (rec.dir === 'out' && rec.after !== undefined) li.dataset.after = rec.after;
  if (rec.history) li.dataset.history = '1';
  if (rec.elsewhere) li.dataset.origin = 'elsewhere';
  if (rec.author) {
    li.dataset.author = String(rec.author);
    li.append(el('p', { class: 'author', text: `User ${rec.author}` }));
  }
  const meta = el('p', { class: 'meta' }, el('time', { dateTime: new Date(rec.ts).toISOString(), text: timeText(rec.ts) }));
  if (rec.type !== P.TEXT) meta.append(` · ${formatBytes(rec.size)}`);
  li.append(el('div', { class: 'bubble' }, bodyEl(rec)), meta);
  if (rec.dir === 'out') updateStatus(li, rec);
  return li;
}

// The mark, upload bar and error of an own message.
function updateStatus(li, rec) {
  li.dataset.status = rec.status;
  if (rec.msgId) li.dataset.msgId = rec.msgId;
  else if (rec.status === 'failed') delete li.dataset.msgId;
  showTick(li);
  let bar = li.querySelector('progress');
  if (rec.status === 'pending' && rec.size >= PROGRESS_MIN && !bar)
    li.querySelector('.bubble').append((bar = el('progress', { max: rec.size, value: 0, 'aria-label': 'Upload' })));
  if (rec.status !== 'pending' && bar) bar.remove();
  let err = li.querySelector('.msg-error');
  if (rec.error && !err) li.append((err = el('p', { class: 'msg-error' })));
  if (err) err.textContent = rec.error ? `Not sent: ${rec.error}` : '';
}

// The mark of an own message: its status ('…' sending, '!' failed, '✓'
// the server has it), and with SIGNALS what the receipts say: '✓'
// delivered, '✓✓' read (a group: by every other member; "read N/M" beside
// it while some have). li[data-receipt] is 'delivered' or 'read'.
function showTick(li) {
  const meta = li.querySelector('.meta');
  const status = li.dataset.status;
  const r = status === 'sent' ? signals.receiptOf(li) : { level: '', readers: 0, total: 0 };
  let [mark, label] = r.level ? RECEIPT_MARKS[r.level] : STATUS_MARKS[status];
  const partial = r.readers > 0 && r.readers < r.total;
  if (partial) label += `, read by ${r.readers} of ${r.total}`;
  if (li.dataset.origin === 'elsewhere') label = r.level ? `${ELSEWHERE_LABEL}, ${label}` : ELSEWHERE_LABEL;
  let m = meta.querySelector('.mark');
  if (!m) meta.append((m = el('span', { class: 'mark' })));
  m.textContent = mark;
  m.setAttribute('aria-label', label);
  m.title = label;
  m.classList.toggle('only-sent', status === 'sent' && !r.level && signals.on);
  m.classList.toggle('read', r.level === 'read');
  if (r.level) li.dataset.receipt = r.level;
  else delete li.dataset.receipt;
  let reads = meta.querySelector('.reads');
  if (partial && !reads) meta.append((reads = el('span', { class: 'reads', 'aria-hidden': 'true' })));
  if (reads) {
    reads.hidden = !partial;
    reads.textContent = partial ? `read ${r.readers}/${r.total}` : '';
  }
}

function msgLi(id) {
  return $('messages').querySelector(`li[data-id="${id}"]`);
}

function showProgress({ key, sent, total }) {
  const bar = msgLi(key)?.querySelector('progress');
  if (!bar) return;
  bar.max = total;
  bar.value = sent;
  bar.setAttribute('aria-valuetext', `${Math.floor((100 * sent) / total)} % sent`);
}

// Is the message list scrolled (nearly) to its end?
function nearEnd() {
  const m = $('messages');
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

function scrollToEnd(force) {
  const m = $('messages');
  if (force || nearEnd()) m.scrollTop = m.scrollHeight;
}

// A message the scroll-back already showed from the server's history (the
// page of history came while this one was being stored): shown once, in
// the place the history gave it.
function appendMessage(rec) {
  const stick = nearEnd();
  const li = messageEl(rec);
  const shown = rec.msgId && $('messages').querySelector(`li[data-msg-id="${rec.msgId}"]`);
  if (shown) shown.replaceWith(li);
  else $('messages').append(li);
  scrollToEnd(stick || (rec.dir === 'out' && !rec.elsewhere));
  if (rec.msgId) signals.scheduleRead();
}

// An own message was acknowledged or refused: store, then show.
function settle(store, key, patch) {
  store
    .update(key, patch)
    .then((rec) => {
      if (!rec || store !== app.store) return;
      const li = msgLi(key);
      if (li) updateStatus(li, rec);
      if (rec.status === 'sent' && !keyGroup(rec.peer)) signals.shared(rec.peer);
    })
    .catch((e) => showAlert(`Cannot update the history: ${e.message}`));
}

// An own message got its server id (POSTED, before its ACK): ticks
// compare it with the marks from now on, also after a reload (stored).
function posted(store, { key, id }) {
  if (store !== app.store) return;
  signals.sawId(id);
  const li = msgLi(key);
  if (li) {
    li.dataset.msgId = String(id);
    showTick(li);
  }
  store.update(key, { msgId: String(id) }).catch((e) => showAlert(`Cannot update the history: ${e.message}`));
}

// conn.js's onMessage: keep the message, then show it. The returned promise
// resolves once it is stored (the server is told only then). An own
// message (written on another device of this user) goes to the
// conversation with its receiver, as sent, and is never unread.
// A group message goes to the group's conversation with its author.
async function receive(store, { sender, peer, group, type, body, own, id, time }) {
  const key = group ? groupKey(peer) : peer;
  const rec = { peer: key, dir: own ? 'out' : 'in', type, ts: time || Date.now(), size: body.length, status: own ? 'sent' : 'received' };
  if (own) rec.elsewhere = true;
  if (id !== null) rec.msgId = String(id);
  if (type === P.TEXT) rec.text = fromUtf8.decode(body);
  else {
    rec.blob = new Blob([body], { type: sniffMime(body.subarray(0, 16), type) });
    rec.preview = `[${TYPE_NAMES[type]}]`;
  }
  if (group && !own) {
    rec.author = sender;
    rec.preview = `User ${sender}: ${rec.preview ?? rec.text.slice(0, 80)}`;
  }
  if (group && !groups.get(peer)) groups.list(); // a group not known yet: its name
  const visible = store === app.store && convVisible(key);
  // (not unread either when another device of this user has shown it)
  const unread = !own && !visible && !signals.readElsewhere(key, id);
  if (unread) signals.sawUnread(key);
  await store.add(rec, unread, id);
  if (store !== app.store) return;
  if (!own) signals.stopped(key, sender); // its message ends its typing
  if (!group) signals.shared(peer);
  if (key === app.peer) appendMessage(rec);
  refreshConvs();
}

// Keep and show a line about a group (an event: a rename, who came, who
// left); never unread.
function addLine(key, text) {
  const store = app.store;
  store.add({ peer: key, dir: 'sys', type: 0, text, ts: Date.now(), size: 0, status: 'received' })
    .then((rec) => {
      if (store !== app.store) return;
      if (key === app.peer) appendMessage(rec);
      refreshConvs();
    })
    .catch((e) => showAlert(`Cannot keep the history: ${e.message}`));
}

// Hand a stored own message to the connection, with the cid it was stored
// with (a record of an older version of this page gets one now).
function queueRecord(rec) {
  const body = rec.type === P.TEXT ? utf8.encode(rec.text) : rec.blob;
  if (!rec.cid) {
    rec.cid = String(newCid());
    app.store.update(rec.id, { cid: rec.cid }).catch((e) => showAlert(`Cannot update the history: ${e.message}`));
  }
  const gid = keyGroup(rec.peer);
  const why = app.conn.enqueue({ key: rec.id, to: gid || rec.peer, group: gid !== 0, type: rec.type, body, cid: BigInt(rec.cid) });
  if (why) settle(app.store, rec.id, { status: 'failed', error: why, pending: undefined });
}

// Store an own message (fields of its record), show it, queue it.
function sendMessage(peer, fields) {
  const store = app.store;
  app.sendChain = app.sendChain
    .then(async () => {
      // after: the highest server id known now; this message's will be above it (signals.js: the
      // tick rule's fallback until POSTED gives its id).
      const rec = await store.add({ peer, dir: 'out', ts: Date.now(), status: 'pending', pending: 1, cid: String(newCid()),
        after: String(signals.known()), ...fields });
      if (store !== app.store) return;
      if (peer === app.peer) appendMessage(rec);
      queueRecord(rec);
      refreshConvs();
    })
    .catch((e) => showAlert(`Could not send: ${e.message}`));
}

function tooBig(size, what) {
  const m = maxFrame();
  if (!m || size <= m) return false;
  showAlert(`${what} is ${formatBytes(size)}; this server takes at most ${formatBytes(m)} per message. Nothing was sent.`);
  return true;
}

function sendText() {
  const ta = $('text');
  const text = ta.value;
  if (!canSend() || text.trim() === '') return;
  const size = utf8.encode(text).length;
  if (tooBig(size, 'The message')) return;
  ta.value = '';
  autosize();
  signals.stopTyping();
  sendMessage(app.peer, { type: P.TEXT, text, size });
}

// A conversation is open and this user may write in it (not a group it left).
const canSend = () => app.peer !== 0 && !$('composer-box').hidden;

function sendFiles(files) {
  if (!canSend()) return;
  for (const f of files) {
    const type = typeOfFile(f);
    if (!type) {
      showAlert(`${f.name} is not a picture, voice or video file. Nothing was sent.`);
      continue;
    }
    if (tooBig(f.size, f.name)) continue;
    sendMessage(app.peer, { type, blob: f, size: f.size, name: f.name, preview: `[${TYPE_NAMES[type]}] ${f.name}` });
  }
}

function autosize() {
  const ta = $('text');
  ta.style.height = 'auto';
  ta.style.height = `${Math.min(ta.scrollHeight, 160)}px`;
}

// --------------------------------------------------------------- wiring

function wire() {
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const user = parseUserId($('login-user').value);
    const password = $('login-password').value;
    if (!user) {
      $('login-error').textContent = 'The user id must be a number from 1 to 4294967295.';
      $('login-user').focus();
      return;
    }
    if (utf8.encode(password).length > P.PASSWORD_MAX) {
      $('login-error').textContent = `The password is longer than ${P.PASSWORD_MAX} bytes.`;
      return;
    }
    login(user, password).catch((e) => ($('login-error').textContent = `Cannot log in: ${e.message}`));
  });
  $('logout').addEventListener('click', () => logout());
  $('retry').addEventListener('click', () => app.conn && app.conn.retryNow());
  $('alert-close').addEventListener('click', clearAlerts);
  $('back').addEventListener('click', closeConv);

  $('new-conv').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const peer = parseUserId($('new-peer').value);
    $('new-peer-error').textContent = peer ? '' : 'Enter a user id from 1 to 4294967295.';
    if (!peer) return;
    $('new-peer').value = '';
    openConv(peer).catch((e) => showAlert(`Cannot open the conversation: ${e.message}`));
  });

  $('messages').addEventListener('scroll', () => scrollBack.onScroll(), { passive: true });
  $('group-toggle').addEventListener('click', () => groups.togglePanel(keyGroup(app.peer)));
  groups.wire();

  $('composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendText();
  });
  $('text').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      sendText();
    }
  });
  $('text').addEventListener('input', () => {
    autosize();
    signals.onInput($('text').value);
  });
  $('text').addEventListener('blur', () => signals.stopTyping());
  $('text').addEventListener('paste', (ev) => {
    const files = ev.clipboardData && ev.clipboardData.files;
    if (files && files.length) {
      ev.preventDefault();
      sendFiles(files);
    }
  });
  $('file-input').addEventListener('change', (ev) => {
    sendFiles(ev.target.files);
    ev.target.value = '';
  });

  const conv = $('conv');
  conv.addEventListener('dragover', (ev) => {
    if (!canSend() || !ev.dataTransfer.types.includes('Files')) return;
    ev.preventDefault();
    $('drop-hint').hidden = false;
    conv.classList.add('dropping');
  });
  conv.addEventListener('dragleave', (ev) => {
    if (conv.contains(ev.relatedTarget)) return;
    $('drop-hint').hidden = true;
    conv.classList.remove('dropping');
  });
  conv.addEventListener('drop', (ev) => {
    ev.preventDefault();
    $('drop-hint').hidden = true;
    conv.classList.remove('dropping');
    sendFiles(ev.dataTransfer.files);
  });

  window.addEventListener('online', () => app.conn && app.conn.retryNow());
  // Back on screen: what is shown is read (here, and with receipts, for
  // the other side and this user's other devices).
  document.addEventListener('visibilitychange', () => {
    if (!convVisible(app.peer)) return;
    const store = app.store;
    store.markRead(app.peer).then(() => store === app.store && refreshConvs())
      .catch((e) => showAlert(`Cannot update the history: ${e.message}`));
    signals.scheduleRead();
  });
  window.addEventListener('focus', () => signals.scheduleRead());
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && $('chat-view').classList.contains('show-conv') && isNarrow()) closeConv();
  });
}

function init() {
  wire();
  const last = localStorage.getItem(LS_USER);
  if (last) $('login-user').value = last;
  const resume = parseUserId(sessionStorage.getItem(SS_SESSION) || '');
  if (resume) login(resume, '').catch((e) => ($('login-error').textContent = `Cannot log in: ${e.message}`));
  else (last ? $('login-password') : $('login-user')).focus();
}

init();
