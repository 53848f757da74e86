// history.js -- scroll-back: the open conversation's older messages, read
// from the server's history a page at a time (HISTORY, docs/PROTOCOL.md)
// when the conversation opens and whenever its list is scrolled to the
// top, until the server says there is no more.
//
// The pages are shown, not kept: the browser's store holds the recent
// messages in the order they came (store.js); the server's history is
// read again when the conversation opens again.
//
// What is shown is the DOM's list (#messages): each message's element says
// its server id (data-msg-id) when known. A page asks for messages before
// the oldest shown id (then before the last id of the previous page), and
// each entry, newest first, is
// - skipped when an element with its id is shown;
// - matched to a shown message without an id (one this device sent: a
//   POST's answer gives no id), same direction, kind, size and text, above
//   the point where the previous entry went: that element gets the id;
// - else shown, just above the previous entry.
// #messages' data-history says where it stands: idle (nothing asked yet,
// or asked again once connected), loading, more (older ones remain), end,
// none (no history here: no CONV, a server without HISTORY, or one that
// refused).

import * as P from './proto.js';
import { keyGroup } from './store.js';
import { sniffMime, TYPE_NAMES } from './media.js';
import { $, el } from './ui.js';

export const PAGE = 50; // messages asked per page
const TOP_PX = 80; // "scrolled to the top": this close to it

const fromUtf8 = new TextDecoder();

export class ScrollBack {
  // app: the page's state ({user, conn, peer}); render(rec) -> the li of a
  // message record (app.js's messageEl).
  constructor(app, render) {
    this.app = app;
    this.render = render;
    this.s = null; // the open conversation's scroll-back, or null
    this.off = false; // this connection's server has no HISTORY
  }

  list() {
    return $('messages');
  }

  mark(state) {
    this.list().dataset.history = state;
    this.list().setAttribute('aria-busy', String(state === 'loading'));
  }

  // A conversation was opened (its stored messages rendered): start over.
  // canAsk: false for a group this user is no longer in.
  open(key, canAsk = true) {
    // waiting: a page is due but could not be asked (no connection, or it
    // was lost): the next WELCOME asks it.
    this.s = { key, more: canAsk, loading: false, waiting: false, before: null, at: undefined, cands: null };
    this.mark(canAsk ? 'idle' : 'none');
    this.load();
  }

  close() {
    this.s = null;
  }

  // A connection became ready: a server that did not know HISTORY may be
  // gone; ask what was waiting for the connection.
  onWelcome() {
    this.off = false;
    if (this.s && this.s.waiting) this.load();
  }

  onUnsupported(kinds) {
    if (!kinds.includes('history')) return;
    this.off = true;
    if (this.s && !this.s.loading) this.mark('none');
  }

  onScroll() {
    if (this.list().scrollTop < TOP_PX) this.load();
  }

  // Ask the next page, when there may be one and none is on its way.
  async load() {
    const s = this.s;
    const conn = this.app.conn;
    if (!s || s.loading || !s.more) return;
    s.waiting = true;
    if (!conn || conn.state !== 'ready') return;
    if (this.off || !conn.conv) {
      this.mark('none');
      return;
    }
    s.waiting = false;
    if (s.cands === null) this.begin(s);
    s.loading = true;
    this.mark('loading');
    const note = el('li', { class: 'history-note', text: 'Loading older messages…' });
    this.list().prepend(note);
    const gid = keyGroup(s.key);
    let page = null;
    try {
      page = await conn.history(gid ? P.H_GROUP : P.H_USER, gid || s.key, s.before, PAGE);
    } catch (e) {
      if (e.why === undefined) throw e; // a bug, not an answer
      if (this.s === s && e.why === 'refused') {
        s.more = false;
        this.list().prepend(el('li', { class: 'history-note', text: `Older messages are not available: ${e.message}.` }));
      } else s.waiting = true; // lost, offline, unsupported: the next connection asks again
    } finally {
      note.remove();
      s.loading = false;
    }
    if (this.s !== s) return;
    if (page) {
      this.insert(s, page.entries);
      if (page.entries.length) s.before = page.entries.at(-1).id;
      s.more = page.more && page.entries.length > 0;
    }
    if (page) this.mark(s.more ? 'more' : 'end');
    else this.mark(!s.more || this.off ? 'none' : 'idle');
    // Fill the view: until it scrolls, or while it is at its top.
    const m = this.list();
    if (page && s.more && (m.scrollHeight <= m.clientHeight + TOP_PX || m.scrollTop < TOP_PX)) await this.load();
  }

  // The first page's starting point: before the oldest shown id; the shown
  // messages without an id above it may be its entries.
  begin(s) {
    const lis = [...this.list().querySelectorAll('li.msg')];
    const anchor = lis.findIndex((li) => li.dataset.msgId);
    s.before = anchor < 0 ? 0n : BigInt(lis[anchor].dataset.msgId);
    s.at = anchor < 0 ? null : lis[anchor]; // entries go before it (null: at the end)
    s.cands = lis.slice(0, anchor < 0 ? lis.length : anchor).filter((li) => !li.classList.contains('sys'));
  }

  // Show a page's entries (newest first) above what is shown, in order,
  // once each; keep the view where the reader is.
  insert(s, entries) {
    const m = this.list();
    const stick = m.scrollHeight - m.scrollTop - m.clientHeight < TOP_PX;
    const fromEnd = m.scrollHeight - m.scrollTop;
    const shown = new Set([...m.querySelectorAll('li[data-msg-id]')].map((li) => li.dataset.msgId));
    for (const e of entries) {
      const id = String(e.id);
      if (shown.has(id)) {
        s.at = m.querySelector(`li[data-msg-id="${id}"]`);
        continue;
      }
      const rec = this.record(s.key, e);
      const k = this.match(s, rec);
      if (k >= 0) {
        const li = s.cands[k];
        li.dataset.msgId = id;
        s.cands = s.cands.slice(0, k);
        s.at = li;
        continue;
      }
      const li = this.render(rec);
      m.insertBefore(li, s.at);
      s.at = li;
      shown.add(id);
    }
    m.scrollTop = stick ? m.scrollHeight : m.scrollHeight - fromEnd;
  }

  // The index of the newest shown message without an id that entry `rec`
  // is, or -1.
  match(s, rec) {
    for (let k = s.cands.length - 1; k >= 0; k--) {
      const li = s.cands[k];
      if (li.classList.contains(rec.dir) && Number(li.dataset.type) === rec.type && Number(li.dataset.size) === rec.size &&
        (rec.type !== P.TEXT || li.querySelector('.text')?.textContent === rec.text) &&
        (li.dataset.author || '') === (rec.author ? String(rec.author) : ''))
        return k;
    }
    return -1;
  }

  // A history entry as a message record (store.js's fields; not stored).
  record(key, e) {
    const out = e.sender === this.app.user;
    const rec = {
      id: `h${e.id}`, peer: key, dir: out ? 'out' : 'in', type: e.kind, ts: e.time, size: e.payload.length,
      status: out ? 'sent' : 'received', msgId: String(e.id), history: true,
    };
    if (e.group && !out) rec.author = e.sender;
    if (e.kind === P.TEXT) rec.text = fromUtf8.decode(e.payload);
    else {
      rec.blob = new Blob([e.payload], { type: sniffMime(e.payload.subarray(0, 16), e.kind) });
      rec.preview = `[${TYPE_NAMES[e.kind]}]`;
    }
    return rec;
  }
}
