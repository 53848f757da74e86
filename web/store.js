// store.js -- the page's history in IndexedDB, one database per user id
// (the server keeps no history it could send again): conversations,
// messages, and the outbox (own messages not yet acknowledged, kept so that
// a reload sends them again).
//
// Bounds (the oldest messages that are not waiting to be sent go first):
// - HISTORY_PER_CONV messages per conversation;
// - HISTORY_BYTES bytes of message bodies in all;
// - CONVS_MAX conversations: starting one more forgets the one least
//   recently used (and its messages) unless messages of it wait to be sent.
//
// A conversation's key (`peer` below) is the other user's id (a number)
// for a conversation with a user, and 'g' and the group's id (a string,
// groupKey) for a group: group ids are numbers of their own.
//
// Records:
//   messages {id (auto, global order), peer, dir: 'in'|'out'|'sys', type
//             (0 for 'sys': a line about the group, e.g. a rename), ts,
//             text | blob, size, status: 'pending'|'sent'|'failed'|'received',
//             error?, pending: 1 while it waits to be sent (indexed),
//             cid?: own message's client id (decimal string, kept for its
//             resends), msgId?: the server id (decimal string) of a
//             MSG, or of an own message written here (POSTED gave it),
//             after?: an own message's highest server id known when it
//             was written (decimal string; the tick rule's fallback while
//             msgId is not known, signals.js),
//             elsewhere?: true for an own message written on another device,
//             author?: the author's user id, in a group}
//   convs    {peer, lastTs, preview, unread, count, bytes; a group's also
//             group: its id, name, admin: bool (this user is one),
//             members: how many, left?: true once this user is no longer
//             a member}
//   meta     {key: 'bytes', value}, {key: 'lastMsgId', value: decimal
//             string}: the highest MSG id kept, written with that message

export const HISTORY_PER_CONV = 500;
export const HISTORY_BYTES = 200 << 20;
export const CONVS_MAX = 200;
export const HISTORY_SHOWN = 200; // messages loaded when a conversation opens

const req = (r) =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

const finished = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error || new Error('history transaction aborted'));
  });

export async function openStore(user) {
  const open = indexedDB.open(`chat-user-${user}`, 1);
  open.onupgradeneeded = () => {
    const db = open.result;
    const msgs = db.createObjectStore('messages', { keyPath: 'id', autoIncrement: true });
    msgs.createIndex('peer', ['peer', 'id']);
    msgs.createIndex('pending', 'pending');
    db.createObjectStore('convs', { keyPath: 'peer' });
    db.createObjectStore('meta', { keyPath: 'key' });
  };
  return new Store(await req(open));
}

// Visit the records of a cursor request in order until visit returns false.
async function walk(request, visit) {
  let cur = await req(request);
  while (cur && (await visit(cur)) !== false) {
    cur.continue();
    cur = await req(cur.request);
  }
}

const peerRange = (peer) => IDBKeyRange.bound([peer, 0], [peer, Infinity]);

// The key of group id's conversation.
export const groupKey = (id) => `g${id}`;

// The group id of a conversation key, 0 for a conversation with a user.
export function keyGroup(key) {
  return typeof key === 'string' && /^g[0-9]+$/.test(key) ? Number(key.slice(1)) : 0;
}

// A conversation key from its text (a data- attribute, localStorage):
// the key, or 0 when it is none.
export function parseKey(s) {
  const t = String(s ?? '');
  if (/^g[1-9][0-9]{0,9}$/.test(t) && Number(t.slice(1)) <= 0xffffffff) return t;
  if (/^[1-9][0-9]{0,9}$/.test(t) && Number(t) <= 0xffffffff) return Number(t);
  return 0;
}

export class Store {
  constructor(db) {
    this.db = db;
  }

  close() {
    this.db.close();
  }

  tx(mode) {
    const t = this.db.transaction(['messages', 'convs', 'meta'], mode);
    return { t, messages: t.objectStore('messages'), convs: t.objectStore('convs'), meta: t.objectStore('meta') };
  }

  // Add a message and account for it in its conversation; `unread`: count
  // it as unread; msgId (BigInt): the server id of the MSG it came in,
  // recorded as the highest kept in the same transaction. Resolves to the
  // stored record (with its id) once it is committed.
  async add(rec, unread = false, msgId = null) {
    const s = this.tx('readwrite');
    const done = finished(s.t);
    const conv = await this.convFor(s, rec.peer);
    rec.id = await req(s.messages.add(rec));
    if (msgId !== null) await req(s.meta.put({ key: 'lastMsgId', value: String(msgId) }));
    conv.lastTs = rec.ts;
    conv.preview = rec.preview ?? rec.text.slice(0, 80);
    conv.count++;
    conv.bytes += rec.size;
    if (unread) conv.unread++;
    const total = ((await req(s.meta.get('bytes'))) || { value: 0 }).value + rec.size;
    await this.prune(s, conv, total);
    await done;
    return rec;
  }

  // The conversation with peer, created (and the least recently used one
  // forgotten past CONVS_MAX) when new. Inside transaction s.
  async convFor(s, peer) {
    const conv = await req(s.convs.get(peer));
    if (conv) return conv;
    const all = await req(s.convs.getAll());
    if (all.length >= CONVS_MAX) {
      all.sort((a, b) => a.lastTs - b.lastTs);
      const pending = new Set((await req(s.messages.index('pending').getAll(1))).map((m) => m.peer));
      for (const old of all) {
        if (pending.has(old.peer)) continue;
        const meta = (await req(s.meta.get('bytes'))) || { value: 0 };
        await walk(s.messages.index('peer').openCursor(peerRange(old.peer)), (cur) => req(cur.delete()));
        await req(s.convs.delete(old.peer));
        await req(s.meta.put({ key: 'bytes', value: meta.value - old.bytes }));
        break;
      }
    }
    return { peer, lastTs: 0, preview: '', unread: 0, count: 0, bytes: 0 };
  }

  // Delete the oldest messages not waiting to be sent until conv is within
  // HISTORY_PER_CONV and everything within HISTORY_BYTES; write conv and
  // the byte total. O(messages deleted + pending ones skipped).
  async prune(s, conv, total) {
    const convs = new Map([[conv.peer, conv]]);
    if (conv.count > HISTORY_PER_CONV) {
      await walk(s.messages.index('peer').openCursor(peerRange(conv.peer)), async (cur) => {
        if (!cur.value.pending) {
          conv.count--;
          conv.bytes -= cur.value.size;
          total -= cur.value.size;
          await req(cur.delete());
        }
        return conv.count > HISTORY_PER_CONV;
      });
    }
    if (total > HISTORY_BYTES) {
      await walk(s.messages.openCursor(), async (cur) => {
        const m = cur.value;
        if (!m.pending) {
          let c = convs.get(m.peer);
          if (!c) convs.set(m.peer, (c = await req(s.convs.get(m.peer))));
          c.count--;
          c.bytes -= m.size;
          total -= m.size;
          await req(cur.delete());
        }
        return total > HISTORY_BYTES;
      });
    }
    for (const c of convs.values()) if (c) await req(s.convs.put(c));
    await req(s.meta.put({ key: 'bytes', value: total }));
  }

  // Change a message's fields; a field set to undefined is removed.
  // Resolves to the record, or null when it is no longer kept.
  async update(id, patch) {
    const s = this.tx('readwrite');
    const done = finished(s.t);
    const rec = await req(s.messages.get(id));
    if (rec) {
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined) delete rec[k];
        else rec[k] = v;
      }
      await req(s.messages.put(rec));
    }
    await done;
    return rec || null;
  }

  // The last `limit` messages with peer, oldest first.
  async list(peer, limit = HISTORY_SHOWN) {
    const s = this.tx('readonly');
    const out = [];
    await walk(s.messages.index('peer').openCursor(peerRange(peer), 'prev'), (cur) => {
      out.push(cur.value);
      return out.length < limit;
    });
    return out.reverse();
  }

  // Every conversation, most recent first.
  async conversations() {
    const all = await req(this.tx('readonly').convs.getAll());
    return all.sort((a, b) => b.lastTs - a.lastTs || String(a.peer).localeCompare(String(b.peer)));
  }

  // Set fields of a conversation (a group's name, admin, members, left),
  // creating it when new. Resolves to the record once committed.
  async setConv(peer, fields) {
    const s = this.tx('readwrite');
    const done = finished(s.t);
    const conv = Object.assign(await this.convFor(s, peer), fields);
    await req(s.convs.put(conv));
    await done;
    return conv;
  }

  // Make sure a conversation with peer exists (an empty one sorts last).
  async ensureConv(peer) {
    const s = this.tx('readwrite');
    const done = finished(s.t);
    if (!(await req(s.convs.get(peer)))) await req(s.convs.put(await this.convFor(s, peer)));
    await done;
  }

  async markRead(peer) {
    const s = this.tx('readwrite');
    const done = finished(s.t);
    const conv = await req(s.convs.get(peer));
    if (conv && conv.unread) {
      conv.unread = 0;
      await req(s.convs.put(conv));
    }
    await done;
  }

  // Another device of this user has shown peer's messages up to id upto
  // (BigInt, a RECEIPT READ by this user): the unread count keeps only the
  // incoming messages above it. Resolves true when it changed.
  async readUpTo(peer, upto) {
    const s = this.tx('readwrite');
    const done = finished(s.t);
    const conv = await req(s.convs.get(peer));
    let changed = false;
    if (conv && conv.unread) {
      // The unread ones are the newest incoming messages: count those above
      // upto, newest first, until one is not (or all unread are seen).
      let above = 0, seen = 0;
      await walk(s.messages.index('peer').openCursor(peerRange(peer), 'prev'), (cur) => {
        const m = cur.value;
        if (m.dir !== 'in') return true;
        if (!m.msgId || BigInt(m.msgId) <= upto) return false;
        above++;
        return ++seen < conv.unread;
      });
      if (above < conv.unread) {
        conv.unread = above;
        await req(s.convs.put(conv));
        changed = true;
      }
    }
    await done;
    return changed;
  }

  // The highest MSG id kept (BigInt), -1n when none.
  async lastMsgId() {
    const m = await req(this.tx('readonly').meta.get('lastMsgId'));
    return m ? BigInt(m.value) : -1n;
  }

  // Own messages waiting to be sent, oldest first.
  async pending() {
    const all = await req(this.tx('readonly').messages.index('pending').getAll(1));
    return all.sort((a, b) => a.id - b.id);
  }
}
