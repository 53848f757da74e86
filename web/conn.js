// conn.js -- one chat session over WebSocket (subprotocol chat.v1): HELLO
// (with CONV and this browser's device name when the page gives one) and
// WELCOME, the outgoing queue and its acknowledgements, acknowledgements of
// what it receives, PING/PONG, reconnects with back-off. No DOM: the page
// listens to its events. The rules are docs/PROTOCOL.md's and the ones
// libchat follows (src/client/client.c, client_send.c).
//
// States (`state`), and what moves between them:
//   idle --start--> connecting --open: HELLO sent--> hello
//   hello --WELCOME--> ready
//   connecting, hello, ready --socket closed, timeout--> backoff (or stopped
//        after ERROR AUTH / NOLOGIN / PROTO: retrying cannot help)
//   backoff --timer, retryNow--> connecting
//   any --stop--> stopped
//
// The outgoing queue holds every message not yet handled, oldest first:
//
//   queue[0] ... (sent on this connection, waiting for the ACK) ... queue[next] ... (not sent yet)
//
// Invariants:
// - queue[i].connSeq is its 1-based number among the data frames and POSTs
//   sent on this connection for i < next, and 0 from next on; so the
//   server's ACK count covers a prefix of the queue and an ERROR's ref
//   names one of it.
// - Messages are sent only in state ready (after WELCOME), in queue order:
//   as POST frames with their cid when WELCOME granted CONV, else as bare
//   data frames. A lost connection resets every connSeq and next to 0: the
//   next connection resends the whole queue, in order, as libchat does.
//   Each message keeps the cid it was queued with for all its resends, so
//   a CONV server recognises one it had accepted but not yet acknowledged
//   and does not deliver it again (effectively once); without CONV such a
//   frame is delivered twice (at least once, never exactly once).
// - Without ACKS granted a message is handled once the socket has written
//   it (bufferedAmount went below its end); with ACKS, once an ACK covers it
//   or an ERROR with its ref refuses it.
// - Received data frames and MSGs are handed to onMessage one at a time, in
//   order, on one chain that outlives connections (a copy resent on a new
//   connection waits until the first copy is stored); recvDone counts those
//   whose onMessage promise resolved (the page stored them), and only
//   recvDone is ever acknowledged: the server deletes a stored message only
//   once it is safe here.
// - lastId is the highest MSG id whose onMessage resolved (the page keeps
//   it with the message and gives it back at the next login). A MSG with an
//   id at or under it is a copy of one already kept (sent again because our
//   ACK was lost): it is counted for the ACK, never handed to onMessage.
// - `gen` changes whenever a socket is given up; work started for an older
//   socket (a pending onMessage, a timer) checks it before touching state.
//
// Requests (GROUP operations, HISTORY pages; CONV only) are not queued:
// each is sent at once on a ready connection and its promise settles with
// the answer that echoes its number (req), an ERROR GROUP whose ref is it,
// or the loss of the connection (the caller asks again if it still wants
// to). Request numbers are REQ_BASE and up, so that they never equal the
// sequence number of a message (an ERROR's ref names either, and ERROR
// GROUP both): a connection sends fewer than 2^31 messages.
//
// Signals (SIGNALS, asked with CONV, granted with it): RECEIPT, TYPING and
// PRESENCE frames are neither queued nor acknowledged: sent at once on a
// ready connection that has SIGNALS (else dropped: the page sends them
// again when it matters), received ones emitted as 'receipt', 'typing'
// and 'presence' events. ERROR DENIED (a presence refused; ref = the user)
// is emitted as 'presence-denied', never taken for a message's ref; ERROR
// GROUP with ref 0 (a TYPING or RECEIPT for a group this user is no longer
// in) as 'signal-refused'. POSTED (the server id a POST of this connection
// got, sent before the ACK that covers it, and again with the same id for
// a resend the server recognised) is emitted as 'posted' {key, cid, id}
// for the queued message with that cid; one naming no message sent on this
// connection is skipped.

import * as P from './proto.js';

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 15000;
const CONNECT_TIMEOUT_MS = 10000; // from new WebSocket to WELCOME
const HIGH_WATER = 4 << 20; // bytes handed to the socket and not yet written before the queue waits
const PROGRESS_MS = 100; // how often bufferedAmount is polled while frames are being written
const PROGRESS_MIN = 64 << 10; // messages this large report their progress
const ACK_EVERY = 64; // acknowledge at least this often while a burst is being stored
export const QUEUE_MAX_ITEMS = 1000; // messages waiting (unsent or unacknowledged)
export const QUEUE_MAX_BYTES = 256 << 20; // their bodies' bytes
const U64_MASK = (1n << 64n) - 1n;
const REQ_BASE = 0x80000000; // request numbers: REQ_BASE + 0 .. 2^31 - 1, cycling
const REQ_KINDS = ['group', 'history']; // request kinds, as the protocol added them

// A source of client message ids (POST cid): a random 64-bit base plus a
// counter, wrapping, never 0 (0 = none). The base is drawn once per source;
// newCid below is the page load's.
export function cidSource(base = crypto.getRandomValues(new BigUint64Array(1))[0]) {
  let n = 0n;
  return () => {
    let cid;
    do cid = (base + ++n) & U64_MASK;
    while (cid === 0n);
    return cid;
  };
}
export const newCid = cidSource();

// Exponential back-off with "equal jitter": attempt 0 waits 0.5-1 x min,
// each attempt doubles that, capped at max. rand() in [0, 1).
export function backoffMs(attempt, min = BACKOFF_MIN_MS, max = BACKOFF_MAX_MS, rand = Math.random) {
  const cap = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return Math.round(cap / 2 + (rand() * cap) / 2);
}

const FATAL = new Set([P.ERR_AUTH, P.ERR_NOLOGIN, P.ERR_PROTO]);

// Why a request failed: `why` is 'refused' (an ERROR: code, codeName, and
// the server's reason as the message), 'lost' (the connection went before
// the answer), 'offline' (no ready CONV connection to send it on) or
// 'unsupported' (the server does not know the frame).
export class RequestError extends Error {
  constructor(why, message, { code = 0, name = '' } = {}) {
    super(message);
    this.why = why;
    this.code = code;
    this.codeName = name;
  }
}

export class ChatConnection extends EventTarget {
  // url: ws(s)://host/ws; user: id; password: Uint8Array (may be empty);
  // device: this browser's device name (P.isDeviceName), null = do not ask
  // for CONV; lastMsgId: the highest MSG id kept by an earlier session
  // (BigInt, -1n = none); onMessage(m) -> Promise resolved once the
  // message is kept (it is acknowledged only then), m = {sender, peer,
  // type, body: Uint8Array, own, id: BigInt or null (a bare data frame),
  // time: unix ms or 0, group: bool}: peer is the other user of the
  // conversation (the sender, or for own messages written on another
  // device, `to`), or with `group` the group's id (the author is sender).
  constructor({ url, user, password, device = null, lastMsgId = -1n, onMessage }) {
    super();
    if (device !== null && !P.isDeviceName(device)) throw new TypeError(`bad device name ${JSON.stringify(device)}`);
    this.url = url;
    this.user = user;
    this.password = password || new Uint8Array(0);
    this.device = device;
    this.lastId = lastMsgId;
    this.onMessage = onMessage;
    this.rx = Promise.resolve(); // onMessage calls, in order, across connections
    this.state = 'idle';
    this.ws = null;
    this.gen = 0;
    this.attempt = 0;
    this.timer = null; // back-off or connect timeout
    this.poller = null; // bufferedAmount poll while writing
    this.acks = false;
    this.conv = false; // WELCOME granted CONV
    this.signals = false; // WELCOME granted SIGNALS (receipts, typing, presence)
    this.maxFrame = 0; // from WELCOME; 0 = not known yet
    this.queue = [];
    this.queueBytes = 0;
    this.reqNext = 0;
    this.requests = new Map(); // req -> {kind, resolve, reject}, in the order sent
    this.resetConnection();
  }

  resetConnection() {
    this.next = 0;
    this.sentCount = 0; // data frames and POSTs sent on this connection
    this.sentBytes = 0; // bytes of frames handed to this socket
    this.written = 0; // of which the socket has written (polled)
    this.recvCount = 0; // data frames and MSGs received on this connection
    this.recvDone = 0; // of which onMessage finished
    this.recvAcked = 0; // the count of our last ACK
    this.groupsKnown = false; // the server answered a GROUP on this connection
    this.unsupported = new Set(); // request kinds this server does not know
    for (const it of this.queue) it.connSeq = 0;
    for (const r of this.requests.values()) r.reject(new RequestError('lost', 'the connection was lost before the answer'));
    this.requests.clear();
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit('state', { state, ...extra });
  }

  start() {
    if (this.state === 'idle' || this.state === 'backoff') this.connect();
  }

  // Reconnect now instead of waiting for the back-off (e.g. the browser
  // says it is online again).
  retryNow() {
    if (this.state !== 'backoff') return;
    clearTimeout(this.timer);
    this.connect();
  }

  stop() {
    const ws = this.ws;
    this.drop();
    this.setState('stopped');
    if (ws) ws.close(1000, 'logged out');
  }

  // Queue a message: {key, to, group (optional: true when `to` is a
  // group), type, body: Blob or Uint8Array, cid: BigInt (optional: a new
  // one from newCid when absent)}. Returns null, or why it cannot be queued
  // (then nothing changed). A group message needs CONV: without it, it is
  // refused when its turn comes.
  enqueue(msg) {
    const size = msg.body instanceof Blob ? msg.body.size : msg.body.length;
    if (this.maxFrame && size > this.maxFrame)
      return `it is ${size} bytes; the server takes at most ${this.maxFrame}`;
    if (this.queue.length >= QUEUE_MAX_ITEMS || this.queueBytes + size > QUEUE_MAX_BYTES)
      return 'too many messages are waiting to be sent; try again once they are';
    const cid = typeof msg.cid === 'bigint' ? msg.cid : newCid();
    // end, hdr (set when sent): where its frame ends in sentBytes, and the
    // bytes before its body (13, or 23 for a POST).
    this.queue.push({ ...msg, cid, size, connSeq: 0, end: 0, hdr: 0 });
    this.queueBytes += size;
    if (this.state === 'ready') this.pump();
    return null;
  }

  queued() {
    return this.queue.length;
  }

  // ---------------------------------------------------------------- requests

  // A GROUP operation: op (P.G_CREATE .. P.G_MEMBERS), group (0 for CREATE
  // and LIST), args {name, users}. Resolves to the GROUPS answer
  // (P.parseGroups); rejects with a RequestError (a malformed request
  // throws P.ProtoError before anything is sent).
  groupOp(op, group, args) {
    return this.request('group', (req) => P.encodeGroup(this.user, op, req, group, args));
  }

  // A HISTORY page: kind P.H_USER (peer: a user) or P.H_GROUP (a group),
  // messages with ids below `before` (BigInt, 0n: from the newest), at most
  // limit. Resolves to the page (P.parseHistoryPage); rejects as groupOp.
  history(kind, peer, before, limit) {
    return this.request('history', (req) => P.encodeHistory(this.user, req, kind, peer, before, limit));
  }

  request(kind, frameOf) {
    if (this.state !== 'ready' || !this.conv)
      return Promise.reject(new RequestError('offline', this.state === 'ready'
        ? 'this server does not keep conversations (no CONV)' : 'not connected to the server'));
    if (this.unsupported.has(kind))
      return Promise.reject(new RequestError('unsupported', `this server does not know ${kind} requests`));
    let req;
    do req = REQ_BASE + (this.reqNext++ & 0x7fffffff);
    while (this.requests.has(req));
    const frame = frameOf(req);
    return new Promise((resolve, reject) => {
      this.requests.set(req, { kind, resolve, reject });
      this.send(frame);
    });
  }

  // The request `req` is answered (or refused): its entry, now settled by
  // the caller, or undefined when none waits (an answer to a request of a
  // lost connection cannot come: those are rejected when it goes).
  take(req) {
    const r = this.requests.get(req);
    this.requests.delete(req);
    return r;
  }

  onGroups(g) {
    this.groupsKnown = true;
    if (g.op === P.G_EVENT) return this.emit('group-event', g);
    const r = this.take(g.req);
    if (r && r.kind === 'group') r.resolve(g);
    else if (r) r.reject(new RequestError('lost', 'the server answered with the wrong frame'));
    return undefined;
  }

  onHistoryPage(page) {
    const r = this.take(page.req);
    if (r && r.kind === 'history') r.resolve(page);
    else if (r) r.reject(new RequestError('lost', 'the server answered with the wrong frame'));
  }

  // ERROR STORE with ref 0 on an open connection: the server could not read
  // a history page (its answer names no request: the oldest waiting one,
  // as its store reads them in order). Returns true when one waited.
  failHistory(e) {
    const waiting = [...this.requests].find(([, r]) => r.kind === 'history');
    if (!waiting) return false;
    this.requests.delete(waiting[0]);
    waiting[1].reject(new RequestError('refused', e.reason || 'the server could not read its history', e));
    return true;
  }

  // ERROR BADTYPE (ref 0; the server sends one per connection) while
  // requests wait: it does not know the type of one of them. It handles
  // frames in order, and answers LIST and MEMBERS at once: once it answered
  // a GROUP, the frame it does not know is a HISTORY; before, it is the
  // first request still waiting (the page sends LIST first). A server
  // without GROUP has no HISTORY either (the later frame). Returns true
  // when the error was taken as that.
  onBadType() {
    const first = this.requests.values().next().value;
    if (!first) return false;
    const kind = this.groupsKnown ? 'history' : first.kind;
    const kinds = REQ_KINDS.slice(REQ_KINDS.indexOf(kind));
    for (const k of kinds) this.unsupported.add(k);
    for (const [req, r] of [...this.requests]) {
      if (!kinds.includes(r.kind)) continue;
      this.requests.delete(req);
      r.reject(new RequestError('unsupported', `this server does not know ${r.kind} requests`));
    }
    this.emit('unsupported', { kinds });
    return true;
  }

  // ----------------------------------------------------------------- signals

  // Send a signal frame (built by frameOf, which may throw P.ProtoError)
  // now: true when sent, false when there is no ready SIGNALS connection.
  signal(frameOf) {
    if (this.state !== 'ready' || !this.signals) return false;
    this.send(frameOf());
    return true;
  }

  // RECEIPT READ: this user has shown conversation conv (a user, or with
  // group a group) up to message id upto (BigInt).
  read(conv, group, upto) {
    return this.signal(() => P.encodeReceipt(this.user, P.R_READ, conv, upto, group));
  }

  // RECEIPT QUERY: the marks of a conversation, answered by 'receipt'
  // events, the last one an R_END.
  queryReceipts(conv, group) {
    return this.signal(() => P.encodeReceipt(this.user, P.R_QUERY, conv, 0n, group));
  }

  // TYPING: state 1 typing, 0 stopped, to a user or a group.
  typing(to, group, state) {
    return this.signal(() => P.encodeTyping(this.user, to, state, group));
  }

  // PRESENCE SUBSCRIBE or UNSUBSCRIBE of any number of users (sent 256 at
  // a time).
  presence(op, users) {
    if (this.state !== 'ready' || !this.signals) return false;
    for (let i = 0; i < users.length; i += P.PRESENCE_USERS_MAX)
      this.send(P.encodePresence(this.user, op, users.slice(i, i + P.PRESENCE_USERS_MAX)));
    return true;
  }

  // ---------------------------------------------------------------- socket

  connect() {
    this.setState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url, 'chat.v1');
    } catch (e) {
      this.lost(null, `cannot open ${this.url}: ${e.message}`);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    const gen = this.gen;
    this.timer = setTimeout(() => {
      if (gen === this.gen) this.lost(ws, 'the server did not answer in time');
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      if (ws !== this.ws) return;
      const flags = P.FLAG_ACKS | (this.device !== null ? P.FLAG_CONV | P.FLAG_SIGNALS : 0);
      ws.send(P.encodeHello(this.user, flags, this.password, this.device || ''));
      this.setState('hello');
    };
    ws.onmessage = (ev) => {
      if (ws === this.ws) this.receive(ev.data);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      const why = ev.reason || (ev.code === 1006 ? 'connection lost' : `closed (${ev.code})`);
      this.lost(ws, why);
    };
  }

  // Forget the current socket (it may still be open: the caller closes it).
  drop() {
    this.gen++;
    clearTimeout(this.timer);
    clearInterval(this.poller);
    this.timer = this.poller = null;
    if (this.ws) this.ws.onopen = this.ws.onmessage = this.ws.onclose = null;
    this.ws = null;
    this.acks = this.conv = this.signals = false;
    this.resetConnection();
  }

  // The socket is gone (or must go): retry later unless stopped.
  lost(ws, reason) {
    if (ws && ws !== this.ws) return;
    this.drop();
    if (ws && ws.readyState < WebSocket.CLOSING) ws.close(1000);
    if (this.state === 'stopped') return;
    const delayMs = backoffMs(this.attempt);
    if (this.attempt < 30) this.attempt++;
    this.setState('backoff', { delayMs, reason });
    const gen = this.gen;
    this.timer = setTimeout(() => {
      if (gen === this.gen && this.state === 'backoff') this.connect();
    }, delayMs);
  }

  fatal(reason) {
    const ws = this.ws;
    this.drop();
    this.setState('stopped', { reason });
    this.emit('fatal', { reason });
    if (ws) ws.close(1000);
  }

  send(frame) {
    this.ws.send(frame);
  }

  // ------------------------------------------------------------- receiving

  receive(data) {
    if (!(data instanceof ArrayBuffer)) return this.lost(this.ws, 'the server sent a text message');
    let f;
    try {
      f = P.decodeS2C(data);
    } catch (e) {
      return this.lost(this.ws, `bad frame from the server: ${e.message}`);
    }
    try {
      if (P.isData(f.type))
        return this.receiveData({ sender: f.sender, peer: f.sender, group: false, type: f.type, body: f.body, own: false, id: null, time: 0 });
      switch (f.type) {
        case P.MSG: return this.receiveMsg(f);
        case P.GROUPS:
          if (!this.conv) throw new P.ProtoError('GROUPS on a connection without CONV');
          return this.onGroups(P.parseGroups(f.body));
        case P.HISTORY_PAGE:
          if (!this.conv) throw new P.ProtoError('HISTORY on a connection without CONV');
          return this.onHistoryPage(P.parseHistoryPage(f.body));
        case P.RECEIPT:
          if (!this.signals) throw new P.ProtoError('RECEIPT on a connection without SIGNALS');
          return this.emit('receipt', P.parseReceipt(f.body));
        case P.TYPING:
          if (!this.signals) throw new P.ProtoError('TYPING on a connection without SIGNALS');
          if (!P.isUserId(f.sender)) throw new P.ProtoError('TYPING from user 0');
          return this.emit('typing', { from: f.sender, ...P.parseTyping(f.body) });
        case P.PRESENCE:
          if (!this.signals) throw new P.ProtoError('PRESENCE on a connection without SIGNALS');
          return this.emit('presence', P.parsePresence(f.body));
        case P.POSTED:
          if (!this.signals) throw new P.ProtoError('POSTED on a connection without SIGNALS');
          return this.onPosted(P.parsePosted(f.body));
        case P.WELCOME: return this.onWelcome(P.parseWelcome(f.body));
        case P.ACK: return this.onAck(P.parseAck(f.body));
        case P.ERROR: return this.onError(P.parseError(f.body));
        case P.PING:
          if (f.body.length > P.PING_MAX) throw new P.ProtoError('PING over 64 bytes');
          return this.send(P.encodePong(this.user, f.body));
        default: return undefined; // PONG, unknown types: skipped
      }
    } catch (e) {
      if (!(e instanceof P.ProtoError)) throw e;
      return this.lost(this.ws, `bad frame from the server: ${e.message}`);
    }
  }

  receiveMsg(f) {
    if (!this.conv) throw new P.ProtoError('MSG on a connection without CONV');
    const m = P.parseMsg(f.body);
    if (!P.isUserId(f.sender)) throw new P.ProtoError('MSG from user 0');
    if (m.own && f.sender !== this.user) throw new P.ProtoError(`own MSG whose author is user ${f.sender}`);
    // A message of this user's always says OWN (it never comes back to the
    // device that sent it); one to a user is to this user.
    if (m.group && !m.own && f.sender === this.user) throw new P.ProtoError('group MSG of this user without OWN');
    if (!m.group && !m.own && m.to !== this.user) throw new P.ProtoError(`MSG to user ${m.to}`);
    const peer = m.own || m.group ? m.to : f.sender;
    this.receiveData({ sender: f.sender, peer, group: m.group, type: m.kind, body: m.payload, own: m.own, id: m.id, time: m.time });
  }

  // m: as onMessage takes it.
  receiveData(m) {
    this.recvCount++;
    const gen = this.gen;
    const keep = async () => {
      if (m.id !== null && m.id <= this.lastId) return; // kept already: only counted
      await this.onMessage(m);
      if (m.id !== null) this.lastId = m.id;
    };
    this.rx = this.rx
      .then(keep)
      .then(
        () => {
          if (gen !== this.gen) return;
          this.recvDone++;
          if (this.recvDone === this.recvCount || this.recvDone - this.recvAcked >= ACK_EVERY)
            this.sendAck();
        },
        (e) => {
          // Not kept: not acknowledged; the server sends it again on the
          // next connection.
          if (gen === this.gen) this.lost(this.ws, `could not keep a message: ${e.message}`);
        },
      );
  }

  sendAck() {
    if (!this.acks || this.state !== 'ready' || this.recvDone <= this.recvAcked) return;
    this.send(P.encodeAck(this.user, this.recvDone));
    this.recvAcked = this.recvDone;
  }

  onWelcome(w) {
    if (this.state !== 'hello') return; // a duplicate: ignored
    clearTimeout(this.timer);
    this.timer = null;
    this.acks = (w.flags & P.FLAG_ACKS) !== 0;
    this.conv = this.device !== null && (w.flags & P.FLAG_CONV) !== 0;
    this.signals = this.conv && (w.flags & P.FLAG_SIGNALS) !== 0;
    this.maxFrame = w.maxFrame;
    this.attempt = 0;
    // Messages queued before the limit was known can never be sent.
    for (const it of this.queue.filter((m) => m.size > w.maxFrame))
      this.refuse(it, P.ERR_TOOBIG, 'TOOBIG', `it is ${it.size} bytes; the server takes at most ${w.maxFrame}`);
    this.setState('ready');
    this.emit('welcome', { acks: this.acks, conv: this.conv, signals: this.signals, maxFrame: w.maxFrame, user: w.user });
    this.pump();
    this.sendAck(); // frames stored before WELCOME was handled
  }

  // POSTED: the message sent on this connection with that cid got server
  // id `id`. Id 0 names no message: skipped.
  onPosted({ cid, id }) {
    const it = this.queue.slice(0, this.next).find((m) => m.cid === cid);
    if (!it || id === 0n) return;
    it.id = id;
    this.emit('posted', { key: it.key, cid, id });
  }

  onAck(count) {
    if (!this.acks) return;
    if (count > this.sentCount) throw new P.ProtoError(`ACK of ${count} frames, only ${this.sentCount} sent`);
    while (this.next > 0 && this.queue[0].connSeq <= count) this.handled(this.queue[0]);
  }

  onError(e) {
    const r = e.code === P.ERR_GROUP && e.ref >= REQ_BASE ? this.take(e.ref) : undefined;
    if (r) {
      this.groupsKnown ||= r.kind === 'group';
      r.reject(new RequestError('refused', e.reason || 'refused by the server', e));
      return;
    }
    if (e.code === P.ERR_DENIED && this.signals) {
      this.emit('presence-denied', { user: e.ref, reason: e.reason });
      return;
    }
    if (e.code === P.ERR_GROUP && !e.ref && this.signals) {
      this.emit('signal-refused', e);
      return;
    }
    if (e.code === P.ERR_BADTYPE && !e.ref && this.onBadType()) return;
    if (e.code === P.ERR_STORE && !e.ref && this.failHistory(e)) return;
    if (e.ref) {
      const it = this.queue.slice(0, this.next).find((m) => m.connSeq === e.ref);
      if (it) this.refuse(it, e.code, e.name, e.reason);
    }
    this.emit('server-error', e);
    if (FATAL.has(e.code)) this.fatal(`${e.name}: ${e.reason}`);
  }

  // ---------------------------------------------------------------- sending

  remove(it) {
    const i = this.queue.indexOf(it);
    console.assert(i >= 0, 'removing a message that is not queued');
    this.queue.splice(i, 1);
    this.queueBytes -= it.size;
    if (i < this.next) this.next--;
  }

  handled(it) {
    this.remove(it);
    this.emit('acked', { key: it.key });
  }

  refuse(it, code, name, reason) {
    this.remove(it);
    this.emit('refused', { key: it.key, code, name, reason });
  }

  // Hand queued messages to the socket while it holds under HIGH_WATER.
  pump() {
    while (this.state === 'ready' && this.next < this.queue.length && this.ws.bufferedAmount < HIGH_WATER) {
      const it = this.queue[this.next];
      if (it.group && !this.conv) {
        this.refuse(it, P.ERR_GROUP, 'GROUP', 'this server does not keep conversations (no CONV): it takes no group messages');
        continue;
      }
      const hdr = this.conv ? P.postHeader(this.user, it.to, it.type, it.cid, it.size, it.group ? P.MSG_GROUP : 0)
        : P.c2sHeader(this.user, it.to, it.type, it.size);
      this.send(it.body instanceof Blob ? new Blob([hdr, it.body]) : P.joinFrame(hdr, it.body));
      it.hdr = hdr.length;
      this.sentBytes += it.hdr + it.size;
      it.end = this.sentBytes;
      it.connSeq = ++this.sentCount;
      this.next++;
    }
    if (this.sentBytes > this.written && !this.poller)
      this.poller = setInterval(() => this.poll(), PROGRESS_MS);
    this.poll();
  }

  // What the socket wrote since the last poll: progress, and without ACKS
  // the messages it finished.
  poll() {
    if (this.state !== 'ready') return;
    const before = this.written;
    this.written = this.sentBytes - this.ws.bufferedAmount;
    for (const it of this.queue.slice(0, this.next)) {
      if (it.end <= before) continue;
      const start = it.end - it.size - it.hdr;
      if (it.size >= PROGRESS_MIN)
        this.emit('progress', { key: it.key, sent: Math.max(0, Math.min(it.size, this.written - start - it.hdr)), total: it.size });
      if (it.end <= this.written && !this.acks) this.handled(it);
    }
    if (this.written >= this.sentBytes && this.next >= this.queue.length) {
      clearInterval(this.poller);
      this.poller = null;
    }
    if (this.written > before && this.next < this.queue.length) this.pump();
  }
}
