// signals.js -- receipts, typing and presence on the page (docs/PROTOCOL.md,
// "Receipts, typing and presence (the SIGNALS flag)"), used when WELCOME
// grants SIGNALS. The session (conn.js) carries the frames; this file keeps
// what they said and tells the page (app.js) what to draw.
//
// Receipts. Marks are cumulative: per conversation and member, the highest
// DELIVERED and READ id this page was sent (live, or in the answer to the
// QUERY it sends when a conversation opens; marks then END). An own
// message is covered by a mark U iff U >= its server id. That id is
// - for a message written on this device, the one POSTED gave it (the
//   server sends it before the ACK, so a message is 'sent' with its id;
//   app.js stores it with the message, so it outlives a reload);
// - for one written on another device, its MSG's; or the one the
//   scroll-back matched.
// Fallback, only for an own message with no id (written by an older
// version of this page, or sent on a connection without SIGNALS or to a
// server without POSTED): the page keeps with it `after`, the highest
// server id it knew when it was written (ids increase in the order the
// server accepts messages, so its own id is above that), and U > after
// covers it. That can tick early (a mark moved by a message accepted
// between the two); it never ticks late.
// A mark of 0 is "never set" and covers nothing.
// 1:1: ✓ when the peer's DELIVERED (or READ) covers it, ✓✓ when its READ
// does. A group: ✓ when any other member's DELIVERED or READ covers it,
// ✓✓ when every other member's READ does (the member count is the
// server's LIST); in between, "read N/M" beside the tick.
//
// Read. While a conversation is open and visible the page sends READ up to
// the newest server id of an incoming message it shows (debounced), when
// it grows. READ with `by` = this user comes from another device: the
// unread count keeps only what is above it. Live ones reach only connected devices, so the page also
// sends QUERY, once per connection, for each conversation it counts unread
// (at WELCOME, and when one gets an unread message, as those kept for it
// come): the answer's own READ mark says what another device showed
// meanwhile, and a message at or under it does not count as unread.
//
// Typing. State 1 at most every TYPING_EVERY_MS while the composer changes
// and is not empty, 0 when it is sent, cleared, left (blur) or another
// conversation opens. Others' typing shows under the messages for
// TYPING_TTL_MS after their last state 1, until their 0 or their message.
//
// Presence. The page subscribes to the peers of the 1:1 conversations of
// its list (at every WELCOME, and as the list changes): a dot in the list
// when online, "online" or "last seen HH:MM" (a date when not today) in the
// open conversation's header. A user the server refuses (ERROR DENIED:
// with --auth on, one this user shares no conversation with yet) shows
// nothing, and is asked again once a message between the two was accepted.

import * as P from './proto.js';
import { groupKey, keyGroup } from './store.js';
import { $, nameList } from './ui.js';

export const TYPING_EVERY_MS = 3000;
export const TYPING_TTL_MS = 6000;
export const READ_DEBOUNCE_MS = 250;

export class Signals {
  // app: the page's state ({user, conn, peer}); hooks: refresh() (the
  // conversation list changed), head() (the open conversation's header),
  // ticks() (redraw the marks of the open conversation's own messages),
  // visible() (the open conversation is on screen), readUpTo(key, upto)
  // (another device read up to upto), members(gid) (a group's member
  // count, 0 when not known), unread() (a promise of the keys of the
  // conversations with unread messages).
  constructor(app, hooks) {
    this.app = app;
    this.hooks = hooks;
    this.on = false; // this connection has SIGNALS
    this.reset();
  }

  // A new login: forget everything.
  reset() {
    this.marks = new Map(); // key -> {delivered: Map(by -> BigInt), read: Map, queried}
    this.maxSeen = 0n; // the highest id any mark or POSTED named
    this.readSent = new Map(); // key -> BigInt: the highest READ sent
    this.ownRead = new Map(); // key -> BigInt: the highest READ of this user's other devices
    this.queriedUnread = new Set(); // keys asked (QUERY) for their unread count on this connection
    clearTimeout(this.readTimer);
    this.readTimer = null;
    this.typingOut = { key: 0, at: 0 }; // whom this user told it types, and when
    if (this.typists) for (const m of this.typists.values()) for (const t of m.values()) clearTimeout(t);
    this.typists = new Map(); // key -> Map(user -> expiry timer)
    this.presence = new Map(); // user -> {online, lastSeen} | {denied: true}
    this.contacts = new Set(); // the users the list shows
    this.subscribed = new Set(); // of which this connection subscribed to
  }

  // ------------------------------------------------------------ session

  onWelcome({ signals }) {
    this.on = signals;
    this.subscribed.clear();
    this.presence.clear(); // the server sends every state again at SUBSCRIBE
    this.typingOut = { key: 0, at: 0 };
    this.clearTypists();
    document.documentElement.dataset.signals = signals ? 'on' : 'off';
    if (!signals) return;
    this.syncPresence();
    if (this.app.peer) this.opened(this.app.peer);
    this.queriedUnread = new Set([this.app.peer]);
    const conn = this.app.conn;
    this.hooks.unread().then((keys) => {
      if (conn === this.app.conn) for (const key of keys) this.sawUnread(key);
    }).catch(() => {}); // only a better unread count was lost
    this.hooks.refresh();
    this.hooks.head();
  }

  // The connection is gone: what it said may be stale.
  onLost() {
    if (!this.on) return;
    this.on = false;
    this.presence.clear();
    this.subscribed.clear();
    this.clearTypists();
    this.hooks.refresh();
    this.hooks.head();
  }

  // The highest server id this page knows (a lower bound of the id of a
  // message written now).
  known() {
    const last = this.app.conn ? this.app.conn.lastId : -1n;
    const m = last > this.maxSeen ? last : this.maxSeen;
    return m > 0n ? m : 0n;
  }

  // A message this page wrote got server id `id` (POSTED): the next one's
  // will be above it.
  sawId(id) {
    if (id > this.maxSeen) this.maxSeen = id;
  }

  // ----------------------------------------------------------- receipts

  marksOf(key) {
    let m = this.marks.get(key);
    if (!m) this.marks.set(key, (m = { delivered: new Map(), read: new Map(), queried: false }));
    return m;
  }

  // A conversation was opened (or the connection came back with it open):
  // ask its marks; #messages[data-receipts] is 'loading' until END.
  opened(key) {
    const list = $('messages');
    if (!this.on) {
      delete list.dataset.receipts;
      return;
    }
    const gid = keyGroup(key);
    this.marksOf(key).queried = false;
    list.dataset.receipts = 'loading';
    this.app.conn.queryReceipts(gid || key, gid !== 0);
    this.scheduleRead();
  }

  onReceipt(r) {
    const key = r.group ? groupKey(r.conv) : r.conv;
    const m = this.marksOf(key);
    if (r.what === P.R_END) {
      m.queried = true;
      if (key === this.app.peer) {
        $('messages').dataset.receipts = 'ready';
        this.hooks.ticks();
      }
      return;
    }
    if (r.upto > this.maxSeen) this.maxSeen = r.upto;
    if (r.by === this.app.user) {
      // Another device of this user (or the QUERY's answer): unread agree.
      if (r.what === P.R_READ && r.upto > (this.ownRead.get(key) ?? 0n)) {
        this.ownRead.set(key, r.upto);
        this.hooks.readUpTo(key, r.upto);
      }
      return;
    }
    const map = r.what === P.R_READ ? m.read : m.delivered;
    if (!map.has(r.by) || r.upto > map.get(r.by)) map.set(r.by, r.upto);
    else if (map.has(r.by)) return; // nothing moved
    if (key === this.app.peer) this.hooks.ticks();
  }

  // Conversation key got an unread message: ask (once per connection)
  // whether another device of this user has shown it.
  sawUnread(key) {
    if (!this.on || this.queriedUnread.has(key)) return;
    this.queriedUnread.add(key);
    const gid = keyGroup(key);
    this.app.conn.queryReceipts(gid || key, gid !== 0);
  }

  // Has another device of this user shown message `id` (BigInt) of key?
  readElsewhere(key, id) {
    return id !== null && id <= (this.ownRead.get(key) ?? 0n);
  }

  // What the marks say of an own message's element: {level: '' |
  // 'delivered' | 'read', readers, total} (readers and total: a group's
  // other members who read it, and how many there are).
  receiptOf(li, key = this.app.peer) {
    const none = { level: '', readers: 0, total: 0 };
    if (!this.on && !this.marks.has(key)) return none;
    const m = this.marks.get(key);
    if (!m) return none;
    const id = li.dataset.msgId ? BigInt(li.dataset.msgId) : null;
    const after = li.dataset.after !== undefined ? BigInt(li.dataset.after) : null;
    if (id === null && after === null) return none;
    const covers = (u) => u !== undefined && u > 0n && (id !== null ? id <= u : u > after);
    const me = this.app.user;
    const gid = keyGroup(key);
    if (!gid) {
      if (covers(m.read.get(key))) return { level: 'read', readers: 1, total: 1 };
      return { level: covers(m.delivered.get(key)) ? 'delivered' : '', readers: 0, total: 1 };
    }
    const others = new Set([...m.read.keys(), ...m.delivered.keys()].filter((u) => u !== me));
    const total = Math.max(this.hooks.members(gid) - 1, others.size);
    let readers = 0, delivered = false;
    for (const u of others) {
      if (covers(m.read.get(u))) readers++;
      else if (covers(m.delivered.get(u))) delivered = true;
    }
    const level = total > 0 && readers >= total ? 'read' : readers > 0 || delivered ? 'delivered' : '';
    return { level, readers, total };
  }

  // -------------------------------------------------------------- read

  // The open conversation may have new messages on screen: READ soon.
  scheduleRead() {
    if (!this.on || this.readTimer) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = null;
      this.sendRead();
    }, READ_DEBOUNCE_MS);
  }

  sendRead() {
    const key = this.app.peer;
    if (!this.on || !key || !this.hooks.visible()) return;
    let newest = 0n;
    // Incoming ones only: an own message's id (POSTED) may be above one
    // still on its way here, which a READ up to it would call shown.
    for (const li of $('messages').querySelectorAll('li.msg.in[data-msg-id]')) {
      const id = BigInt(li.dataset.msgId);
      if (id > newest) newest = id;
    }
    if (newest === 0n || newest <= (this.readSent.get(key) ?? 0n)) return;
    const gid = keyGroup(key);
    if (this.app.conn.read(gid || key, gid !== 0, newest)) this.readSent.set(key, newest);
  }

  // ------------------------------------------------------------ typing

  // The composer's text changed (text: its value) in the open conversation.
  onInput(text) {
    const key = this.app.peer;
    if (!this.on || !key) return;
    if (text.trim() === '') {
      this.stopTyping();
      return;
    }
    const now = Date.now();
    if (this.typingOut.key !== key) this.stopTyping();
    else if (now - this.typingOut.at < TYPING_EVERY_MS) return;
    const gid = keyGroup(key);
    if (this.app.conn.typing(gid || key, gid !== 0, 1)) this.typingOut = { key, at: now };
  }

  // This user stopped typing (sent, cleared, left the composer, opened
  // another conversation): tell the one it told it was.
  stopTyping() {
    const { key } = this.typingOut;
    this.typingOut = { key: 0, at: 0 };
    if (!key || !this.on) return;
    const gid = keyGroup(key);
    this.app.conn.typing(gid || key, gid !== 0, 0);
  }

  onTyping({ from, group, to, typing }) {
    if (from === this.app.user) return;
    const key = group ? groupKey(to) : from;
    if (typing) {
      let m = this.typists.get(key);
      if (!m) this.typists.set(key, (m = new Map()));
      clearTimeout(m.get(from));
      m.set(from, setTimeout(() => this.stopped(key, from), TYPING_TTL_MS));
      if (key === this.app.peer) this.showTyping();
    } else this.stopped(key, from);
  }

  // User `from` no longer types in conversation key (its 0, its message, or
  // TYPING_TTL_MS without a refresh).
  stopped(key, from) {
    const m = this.typists.get(key);
    if (!m || !m.has(from)) return;
    clearTimeout(m.get(from));
    m.delete(from);
    if (!m.size) this.typists.delete(key);
    if (key === this.app.peer) this.showTyping();
  }

  clearTypists() {
    for (const m of this.typists.values()) for (const t of m.values()) clearTimeout(t);
    this.typists.clear();
    this.showTyping();
  }

  // The open conversation's "User N is typing…" line.
  showTyping() {
    const line = $('typing');
    const m = this.typists.get(this.app.peer);
    const users = m ? [...m.keys()].sort((a, b) => a - b) : [];
    line.hidden = users.length === 0;
    line.textContent = users.length ? `${nameList(users.map((u) => `User ${u}`))} ${users.length === 1 ? 'is' : 'are'} typing…` : '';
    line.dataset.users = users.join(' ');
  }

  // ---------------------------------------------------------- presence

  // The users of the conversation list (peers of 1:1 conversations).
  setContacts(users) {
    this.contacts = new Set(users);
    this.syncPresence();
  }

  syncPresence() {
    const conn = this.app.conn;
    if (!this.on || !conn) return;
    const add = [...this.contacts].filter((u) => !this.subscribed.has(u));
    const drop = [...this.subscribed].filter((u) => !this.contacts.has(u));
    if (add.length && conn.presence(P.PRES_SUBSCRIBE, add)) for (const u of add) this.subscribed.add(u);
    if (drop.length && conn.presence(P.PRES_UNSUBSCRIBE, drop)) {
      for (const u of drop) {
        this.subscribed.delete(u);
        this.presence.delete(u);
      }
    }
  }

  onPresence({ user, online, lastSeen }) {
    if (!this.subscribed.has(user)) return; // after an UNSUBSCRIBE, one may still come
    this.presence.set(user, { online, lastSeen });
    this.hooks.refresh();
    if (this.app.peer === user) this.hooks.head();
  }

  onDenied({ user }) {
    this.presence.set(user, { denied: true });
    this.hooks.refresh();
    if (this.app.peer === user) this.hooks.head();
  }

  // A message between this user and `user` was accepted: a subscription
  // the server refused (no conversation shared yet) may be granted now.
  shared(user) {
    if (!this.presence.get(user)?.denied) return;
    this.presence.delete(user);
    this.subscribed.delete(user);
    this.syncPresence();
  }

  // {state: 'online' | 'offline', text} of a user, or null (not known,
  // refused, no SIGNALS).
  presenceOf(user) {
    const p = this.on ? this.presence.get(user) : undefined;
    if (!p || p.denied) return null;
    if (p.online) return { state: 'online', text: 'online' };
    if (!p.lastSeen) return { state: 'offline', text: '' };
    return { state: 'offline', text: `last seen ${lastSeenText(p.lastSeen)}` };
  }
}

// "HH:MM" today, else the date (and the year when not this one).
export function lastSeenText(ms, now = new Date()) {
  const d = new Date(ms);
  if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const opts = { day: 'numeric', month: 'short' };
  if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString([], opts);
}
