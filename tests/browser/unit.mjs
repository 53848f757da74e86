// unit.mjs -- the web client's session (web/conn.js), codec and media
// helpers in Node, with a scripted WebSocket: the protocol's edges that a
// real server does not produce on demand. run.mjs runs these first.

import assert from 'node:assert/strict';
import { afterEach, mock, test } from 'node:test';
import * as P from '../../web/proto.js';
import { ChatConnection, backoffMs, cidSource, newCid, BACKOFF_MAX_MS, BACKOFF_MIN_MS } from '../../web/conn.js';
import { sniffMime, typeOfFile } from '../../web/media.js';
import { Signals, lastSeenText } from '../../web/signals.js';

// A WebSocket the test plays the server of.
class FakeSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static all = [];
  constructor(url, protocol) {
    this.url = url;
    this.protocol = protocol;
    this.readyState = 0;
    this.bufferedAmount = 0;
    this.sent = []; // frames, each as a Uint8Array
    FakeSocket.all.push(this);
  }
  send(f) {
    assert.ok(f instanceof Uint8Array, 'bodies given as bytes are sent as bytes');
    this.sent.push(f);
  }
  close() {
    this.readyState = 3;
  }
  // test side
  open() {
    this.readyState = 1;
    this.onopen();
  }
  frame(sender, type, body = new Uint8Array(0)) {
    const f = new Uint8Array(P.S2C_HDR + body.length);
    const v = new DataView(f.buffer);
    v.setUint32(0, sender);
    v.setUint8(4, type);
    v.setUint32(5, body.length);
    f.set(body, P.S2C_HDR);
    this.onmessage({ data: f.buffer });
  }
  welcome(user, flags = P.FLAG_ACKS, maxFrame = 1 << 20) {
    const b = new Uint8Array(10);
    const v = new DataView(b.buffer);
    v.setUint8(0, 1);
    v.setUint8(1, flags);
    v.setUint32(2, user);
    v.setUint32(6, maxFrame);
    this.frame(0, P.WELCOME, b);
  }
  // A MSG: {id, kind, own, to, time, payload (string)}, from `sender`.
  msg(sender, { id, kind = P.TEXT, own = false, to = 1, time = 1700000000000, payload = '' }) {
    this.frame(sender, P.MSG, msgBody({ id, kind, flags: own ? P.MSG_OWN : 0, to, time, payload: text(payload) }));
  }
  ack(count) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(count));
    this.frame(0, P.ACK, b);
  }
  error(code, ref, reason) {
    const r = new TextEncoder().encode(reason);
    const b = new Uint8Array(10 + r.length);
    const v = new DataView(b.buffer);
    v.setUint16(0, code);
    v.setBigUint64(2, BigInt(ref));
    b.set(r, 10);
    this.frame(0, P.ERROR, b);
  }
  lose() {
    this.readyState = 3;
    this.onclose({ code: 1006, reason: '' });
  }
  // The sent frames decoded: {sender, receiver, type, body}; a POST's
  // fields too: {kind, flags, cid, payload}.
  frames() {
    return this.sent.map((f) => {
      const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
      assert.equal(f.length, P.C2S_HDR + v.getUint32(9), 'one whole frame per message');
      const out = { sender: v.getUint32(0), receiver: v.getUint32(4), type: v.getUint8(8), body: f.subarray(P.C2S_HDR) };
      if (out.type === P.POST)
        Object.assign(out, { kind: f[13], flags: f[14], cid: v.getBigUint64(15), payload: f.subarray(P.C2S_HDR + P.POST_HDR) });
      return out;
    });
  }
}
globalThis.WebSocket = FakeSocket;

const text = (s) => new TextEncoder().encode(s);
const untext = (b) => new TextDecoder().decode(b);
const conns = [];

// A MSG body, written here byte by byte as docs/PROTOCOL.md lays it out.
function msgBody({ id, kind, flags, to, time, payload }) {
  const b = new Uint8Array(P.MSG_HDR + payload.length);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(id));
  v.setUint8(8, kind);
  v.setUint8(9, flags);
  v.setUint32(10, to);
  v.setBigUint64(14, BigInt(time));
  b.set(payload, P.MSG_HDR);
  return b;
}

// A connection of user 1 with its events recorded, started, its socket;
// device: ask for CONV with that name.
function connect({ onMessage = async () => {}, password = '', device = null, lastMsgId } = {}) {
  const c = new ChatConnection({ url: 'ws://test/ws', user: 1, password: text(password), device, lastMsgId, onMessage });
  const events = [];
  for (const name of ['acked', 'refused', 'server-error', 'fatal', 'state'])
    c.addEventListener(name, (ev) => events.push({ event: name, ...ev.detail }));
  conns.push(c);
  c.start();
  return { c, events, ws: FakeSocket.all.at(-1) };
}

const named = (events, name) => events.filter((e) => e.event === name);
// The counts of the ACKs a socket sent.
const acks = (ws) => ws.frames().filter((f) => f.type === P.ACK).map((f) => Number(new DataView(f.body.buffer, f.body.byteOffset).getBigUint64(0)));
const settle = () => new Promise((r) => setImmediate(r));

afterEach(() => {
  for (const c of conns.splice(0)) c.stop(); // no timer outlives its test
  FakeSocket.all = [];
});

test('unit: HELLO first with ACKS and the password; data only after WELCOME, in order', () => {
  const { c, ws } = connect({ password: 'pässword' });
  assert.equal(ws.protocol, 'chat.v1');
  c.enqueue({ key: 1, to: 2, type: P.TEXT, body: text('one') });
  ws.open();
  c.enqueue({ key: 2, to: 3, type: P.TEXT, body: text('two') });
  let f = ws.frames();
  assert.equal(f.length, 1, 'nothing but HELLO before WELCOME');
  assert.deepEqual([f[0].sender, f[0].type, f[0].body[0], f[0].body[1], untext(f[0].body.subarray(2))],
    [1, P.HELLO, 1, P.FLAG_ACKS, 'pässword']);
  ws.welcome(1);
  assert.equal(c.state, 'ready');
  f = ws.frames().slice(1);
  assert.deepEqual(f.map((x) => [x.sender, x.receiver, x.type, untext(x.body)]), [[1, 2, 1, 'one'], [1, 3, 1, 'two']]);
});

test('unit: ACK counts settle a prefix; an ERROR ref refuses that frame only', () => {
  const { c, events, ws } = connect();
  ws.open();
  ws.welcome(1);
  for (const k of [1, 2, 3, 4]) c.enqueue({ key: k, to: 2, type: P.TEXT, body: text(`m${k}`) });
  ws.ack(1);
  assert.deepEqual(named(events, 'acked').map((e) => e.key), [1]);
  ws.error(7, 3, 'quota full'); // the server refuses frame 3, then acknowledges past it
  ws.ack(4);
  assert.deepEqual(named(events, 'acked').map((e) => e.key), [1, 2, 4]);
  assert.deepEqual(named(events, 'refused').map((e) => [e.key, e.name, e.reason]), [[3, 'QUOTA', 'quota full']]);
  assert.equal(named(events, 'server-error')[0].ref, 3);
  assert.equal(c.queued(), 0);
  ws.ack(4); // a repeated count changes nothing
  assert.equal(named(events, 'acked').length, 3);
});

test('unit: a lost connection resends what was not acknowledged, in order, after the next WELCOME', () => {
  const { c, events, ws } = connect();
  ws.open();
  ws.welcome(1);
  for (const k of [1, 2, 3]) c.enqueue({ key: k, to: 2, type: P.TEXT, body: text(`m${k}`) });
  ws.ack(1);
  ws.lose();
  assert.equal(c.state, 'backoff');
  c.enqueue({ key: 4, to: 2, type: P.TEXT, body: text('m4') });
  c.retryNow();
  const ws2 = FakeSocket.all.at(-1);
  assert.notEqual(ws2, ws);
  ws2.open();
  assert.equal(ws2.frames().length, 1, 'only HELLO before WELCOME');
  ws2.welcome(1);
  assert.deepEqual(ws2.frames().slice(1).map((f) => untext(f.body)), ['m2', 'm3', 'm4']);
  ws2.ack(2); // counts are per connection: these are m2 and m3
  assert.deepEqual(named(events, 'acked').map((e) => e.key), [1, 2, 3]);
  ws2.ack(3);
  assert.deepEqual(named(events, 'acked').map((e) => e.key), [1, 2, 3, 4]);
});

test('unit: an ACK over the frames sent is a protocol error: the connection is dropped', () => {
  const { c, ws } = connect();
  ws.open();
  ws.welcome(1);
  c.enqueue({ key: 1, to: 2, type: P.TEXT, body: text('m1') });
  ws.ack(2);
  assert.equal(c.state, 'backoff');
  assert.equal(c.queued(), 1, 'the message waits for the next connection');
});

test('unit: received frames are acknowledged only once stored, cumulatively', async () => {
  const stored = [];
  let release;
  const gate = new Promise((r) => (release = r));
  const { ws } = connect({
    onMessage: async ({ sender, type, body }) => {
      await gate;
      stored.push([sender, type, untext(body)]);
    },
  });
  ws.open();
  ws.welcome(1);
  ws.frame(5, P.TEXT, text('a'));
  ws.frame(6, P.TEXT, text('b'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(acks(ws), [], 'nothing acknowledged before it is stored');
  release();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(stored, [[5, 1, 'a'], [6, 1, 'b']]);
  assert.equal(acks(ws).at(-1), 2);
});

test('unit: a frame that could not be stored is not acknowledged; the connection is dropped', async () => {
  const { c, ws } = connect({ onMessage: async () => { throw new Error('disk full'); } });
  ws.open();
  ws.welcome(1);
  ws.frame(5, P.TEXT, text('a'));
  await new Promise((r) => setImmediate(r));
  assert.equal(ws.frames().filter((f) => f.type === P.ACK).length, 0);
  assert.equal(c.state, 'backoff');
});

test('unit: PING is answered with PONG carrying its body', () => {
  const { ws } = connect();
  ws.open();
  ws.welcome(1);
  ws.frame(0, P.PING, text('xyz'));
  const pong = ws.frames().at(-1);
  assert.deepEqual([pong.type, untext(pong.body)], [P.PONG, 'xyz']);
});

test('unit: max_frame: bigger messages are refused at enqueue, and at WELCOME when queued before', () => {
  const { c, events, ws } = connect();
  c.enqueue({ key: 1, to: 2, type: P.PICTURE, body: new Uint8Array(100) });
  c.enqueue({ key: 2, to: 2, type: P.TEXT, body: text('small') });
  ws.open();
  ws.welcome(1, P.FLAG_ACKS, 50);
  assert.deepEqual(named(events, 'refused').map((e) => [e.key, e.name]), [[1, 'TOOBIG']]);
  assert.deepEqual(ws.frames().slice(1).map((f) => untext(f.body)), ['small']);
  assert.match(c.enqueue({ key: 3, to: 2, type: P.PICTURE, body: new Uint8Array(51) }), /at most 50/);
  assert.equal(c.enqueue({ key: 4, to: 2, type: P.PICTURE, body: new Uint8Array(50) }), null);
});

test('unit: ERROR AUTH stops the session (no retry); SHUTDOWN does not', () => {
  const a = connect();
  a.ws.open();
  a.ws.error(5, 0, 'wrong user id or password');
  assert.equal(a.c.state, 'stopped');
  assert.match(named(a.events, 'fatal')[0].reason, /^AUTH: wrong/);
  const b = connect();
  b.ws.open();
  b.ws.welcome(1);
  b.ws.error(11, 0, 'server is stopping');
  b.ws.lose();
  assert.equal(b.c.state, 'backoff');
});

test('unit: without ACKS granted, a message is handled once the socket wrote it', () => {
  const { c, events, ws } = connect();
  ws.open();
  ws.welcome(1, 0);
  ws.bufferedAmount = 1000; // the socket still holds it
  c.enqueue({ key: 1, to: 2, type: P.TEXT, body: text('m1') });
  assert.equal(named(events, 'acked').length, 0);
  ws.bufferedAmount = 0;
  c.poll();
  assert.deepEqual(named(events, 'acked').map((e) => e.key), [1]);
});

test('unit: back-off doubles from 0.5-1 x min up to the cap, with jitter', () => {
  assert.equal(backoffMs(0, 500, 15000, () => 0), 250);
  assert.equal(backoffMs(0, 500, 15000, () => 0.999999), 500);
  assert.equal(backoffMs(3, 500, 15000, () => 0), 2000);
  assert.equal(backoffMs(40, BACKOFF_MIN_MS, BACKOFF_MAX_MS, () => 0.999999), BACKOFF_MAX_MS);
  assert.equal(backoffMs(40, BACKOFF_MIN_MS, BACKOFF_MAX_MS, () => 0), BACKOFF_MAX_MS / 2);
});

test('unit: codec refuses what is not one whole frame', () => {
  const f = new Uint8Array([0, 0, 0, 1, 1, 0, 0, 0, 3, 104, 105]); // says 3 bytes, has 2
  assert.throws(() => P.decodeS2C(f.buffer), P.ProtoError);
  assert.throws(() => P.decodeS2C(new ArrayBuffer(4)), P.ProtoError);
  assert.throws(() => P.parseWelcome(new Uint8Array(9)), P.ProtoError);
  assert.throws(() => P.encodeHello(1, 1, new Uint8Array(P.PASSWORD_MAX + 1)), P.ProtoError);
  assert.deepEqual(P.parseError(new Uint8Array([0, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0xff])),
    { code: 99, name: 'code 99', ref: 0, reason: '\ufffd' });
});

test('unit: media types from files and from first bytes', () => {
  assert.equal(typeOfFile({ type: 'image/png', name: 'a.png' }), P.PICTURE);
  assert.equal(typeOfFile({ type: '', name: 'clip.WEBM' }), P.VIDEO);
  assert.equal(typeOfFile({ type: '', name: 'song.opus' }), P.VOICE);
  assert.equal(typeOfFile({ type: 'text/plain', name: 'notes.txt' }), 0);
  assert.equal(sniffMime(new Uint8Array([0x89, 0x50, 0x4e, 0x47]), P.PICTURE), 'image/png');
  assert.equal(sniffMime(text('RIFF\0\0\0\0WAVE'), P.VOICE), 'audio/wav');
  assert.equal(sniffMime(text('\0\0\0\x20ftypisom'), P.VIDEO), 'video/mp4');
  assert.equal(sniffMime(new Uint8Array([1, 2]), P.VOICE), 'audio/*');
});

// ------------------------------------------------ CONV: devices, MSG, POST

test('unit: codec: HELLO with CONV carries the device name before the password', () => {
  const f = P.encodeHello(7, P.FLAG_ACKS | P.FLAG_CONV, text('pw'), 'web-ab12');
  assert.deepEqual([...f], [0, 0, 0, 7, 0, 0, 0, 0, P.HELLO, 0, 0, 0, 13,
    1, 3, 8, ...text('web-ab12'), ...text('pw')]);
  // The default device: an empty name, its length byte still there.
  assert.deepEqual([...P.encodeHello(7, P.FLAG_CONV, null, '').subarray(P.C2S_HDR)], [1, 2, 0]);
  // Without CONV: no name, as before.
  assert.deepEqual([...P.encodeHello(7, P.FLAG_ACKS, text('pw')).subarray(P.C2S_HDR)], [1, 1, ...text('pw')]);
  assert.equal(P.encodeHello(7, P.FLAG_CONV, null, 'x'.repeat(32)).length, P.C2S_HDR + 3 + 32);
  assert.throws(() => P.encodeHello(7, P.FLAG_CONV, null, 'x'.repeat(33)), P.ProtoError);
  assert.throws(() => P.encodeHello(7, P.FLAG_CONV, null, 'web 1'), P.ProtoError);
  assert.throws(() => P.encodeHello(7, P.FLAG_CONV, null, 'wéb'), P.ProtoError);
  assert.throws(() => P.encodeHello(7, P.FLAG_ACKS, null, 'web-1'), P.ProtoError, 'a name without CONV');
});

test('unit: codec: POST is the header, kind, flags 0, the cid, then the payload', () => {
  const f = P.encodePost(7, 9, P.VOICE, 0x0102030405060708n, text('hey'));
  assert.deepEqual([...f], [0, 0, 0, 7, 0, 0, 0, 9, P.POST, 0, 0, 0, 13,
    P.VOICE, 0, 1, 2, 3, 4, 5, 6, 7, 8, ...text('hey')]);
  // The header of a POST whose payload follows as a Blob: its len counts it.
  const h = P.postHeader(7, 9, P.VIDEO, (1n << 64n) - 1n, 1000);
  assert.equal(h.length, P.C2S_HDR + P.POST_HDR);
  assert.equal(new DataView(h.buffer).getUint32(9), P.POST_HDR + 1000);
  assert.deepEqual([...h.subarray(15)], [255, 255, 255, 255, 255, 255, 255, 255]);
  assert.throws(() => P.postHeader(7, 9, 5, 1n, 0), P.ProtoError, 'kind 5');
  assert.throws(() => P.postHeader(7, 9, P.TEXT, 1n << 64n, 0), P.ProtoError, 'cid over 64 bits');
  assert.throws(() => P.postHeader(7, 9, P.TEXT, 1, 0), P.ProtoError, 'cid not a BigInt');
});

test('unit: codec: MSG decodes id, kind, OWN, to, time and payload', () => {
  const body = msgBody({ id: (1n << 63n) + 5n, kind: P.PICTURE, flags: P.MSG_OWN | 0x80, to: 0xfffffffe, time: 1700000000123, payload: text('png') });
  const m = P.parseMsg(body);
  assert.deepEqual({ ...m, payload: untext(m.payload) },
    { id: (1n << 63n) + 5n, kind: P.PICTURE, own: true, group: false, to: 0xfffffffe, time: 1700000000123, payload: 'png' });
  assert.equal(m.payload.buffer, body.buffer, 'the payload is a view, not a copy');
  const empty = P.parseMsg(msgBody({ id: 1, kind: P.TEXT, flags: 0, to: 1, time: 0, payload: new Uint8Array(0) }));
  assert.deepEqual([empty.own, empty.payload.length], [false, 0]);
});

test('unit: codec: a malformed MSG is refused', () => {
  const good = { id: 1, kind: P.TEXT, flags: 0, to: 1, time: 0, payload: new Uint8Array(0) };
  assert.throws(() => P.parseMsg(msgBody(good).subarray(0, P.MSG_HDR - 1)), /under 22/);
  assert.throws(() => P.parseMsg(msgBody({ ...good, kind: 0 })), /kind 0/);
  assert.throws(() => P.parseMsg(msgBody({ ...good, kind: 5 })), /kind 5/);
  assert.throws(() => P.parseMsg(msgBody({ ...good, to: 0 })), /user 0/);
});

test('unit: cids: a base plus a counter, wrapping, never 0; one source per page load', () => {
  const next = cidSource((1n << 64n) - 2n);
  assert.deepEqual([next(), next(), next()], [(1n << 64n) - 1n, 1n, 2n]);
  const a = newCid();
  assert.equal(newCid(), a + 1n);
  assert.notEqual(cidSource()(), cidSource()(), 'two random bases');
});

test('unit: CONV granted: HELLO names the device; messages go as POST, a resend keeps its cid', () => {
  const { c, events, ws } = connect({ device: 'web-test0001' });
  ws.open();
  const hello = ws.frames()[0];
  // CONV and, with it, SIGNALS (receipts, typing, presence).
  assert.deepEqual([...hello.body], [1, P.FLAG_ACKS | P.FLAG_CONV | P.FLAG_SIGNALS, 12, ...text('web-test0001')]);
  assert.equal(P.FLAG_SIGNALS, 0x04);
  ws.welcome(1, P.FLAG_ACKS | P.FLAG_CONV);
  assert.equal(c.conv, true);
  c.enqueue({ key: 1, to: 2, type: P.TEXT, body: text('m1'), cid: 41n });
  c.enqueue({ key: 2, to: 3, type: P.VOICE, body: text('m2') }); // a cid from newCid
  const first = ws.frames().slice(1);
  assert.deepEqual(first.map((f) => [f.type, f.receiver, f.kind, f.flags, untext(f.payload)]),
    [[P.POST, 2, P.TEXT, 0, 'm1'], [P.POST, 3, P.VOICE, 0, 'm2']]);
  assert.equal(first[0].cid, 41n);
  assert.ok(first[1].cid > 0n);
  ws.ack(1); // POSTs count for the ACK as data frames do
  assert.deepEqual(named(events, 'acked').map((e) => e.key), [1]);
  ws.lose();
  c.retryNow();
  const ws2 = FakeSocket.all.at(-1);
  ws2.open();
  ws2.welcome(1, P.FLAG_ACKS | P.FLAG_CONV);
  const again = ws2.frames().slice(1);
  assert.deepEqual(again.map((f) => [f.type, f.cid, untext(f.payload)]), [[P.POST, first[1].cid, 'm2']]);
  ws2.ack(1);
  assert.deepEqual(named(events, 'acked').map((e) => e.key), [1, 2]);
});

test('unit: CONV not granted (an echo server, an older one): bare data frames', () => {
  const { c, ws } = connect({ device: 'web-test0001' });
  ws.open();
  ws.welcome(1, P.FLAG_ACKS);
  assert.equal(c.conv, false);
  c.enqueue({ key: 1, to: 2, type: P.TEXT, body: text('m1') });
  assert.deepEqual(ws.frames().slice(1).map((f) => [f.type, f.receiver, untext(f.body)]), [[P.TEXT, 2, 'm1']]);
  // Without CONV the server never sends MSG: one is a protocol error.
  ws.msg(5, { id: 1, payload: 'x' });
  assert.equal(c.state, 'backoff');
});

test('unit: MSG: incoming and own messages reach onMessage with their conversation', async () => {
  const got = [];
  const { ws } = connect({ device: 'web-test0001', onMessage: async (m) => got.push({ ...m, body: untext(m.body) }) });
  ws.open();
  ws.welcome(1, P.FLAG_ACKS | P.FLAG_CONV);
  ws.msg(5, { id: 10, payload: 'from 5', time: 1700000000001 });
  ws.msg(1, { id: 11, own: true, to: 6, kind: P.PICTURE, payload: 'mine, to 6' });
  ws.frame(7, P.TEXT, text('bare')); // a data frame still counts, without an id
  await settle();
  assert.deepEqual(got, [
    { sender: 5, peer: 5, group: false, type: P.TEXT, body: 'from 5', own: false, id: 10n, time: 1700000000001 },
    { sender: 1, peer: 6, group: false, type: P.PICTURE, body: 'mine, to 6', own: true, id: 11n, time: 1700000000000 },
    { sender: 7, peer: 7, group: false, type: P.TEXT, body: 'bare', own: false, id: null, time: 0 },
  ]);
  assert.equal(acks(ws).at(-1), 3);
});

test('unit: MSG: one at or under the highest id kept is counted for the ACK, not kept again', async () => {
  const got = [];
  const { ws } = connect({ device: 'd', lastMsgId: 20n, onMessage: async (m) => got.push(m.id) });
  ws.open();
  ws.welcome(1, P.FLAG_ACKS | P.FLAG_CONV);
  for (const id of [19, 20, 21, 21, 22]) ws.msg(5, { id, payload: `m${id}` });
  await settle();
  assert.deepEqual(got, [21n, 22n]);
  assert.equal(acks(ws).at(-1), 5, 'the copies are acknowledged too');
});

test('unit: MSG: a copy resent on a new connection while the first is being stored is kept once', async () => {
  const got = [];
  let release;
  const gate = new Promise((r) => (release = r));
  const { c, ws } = connect({
    device: 'd',
    onMessage: async (m) => {
      await gate;
      got.push(m.id);
    },
  });
  ws.open();
  ws.welcome(1, P.FLAG_ACKS | P.FLAG_CONV);
  ws.msg(5, { id: 30, payload: 'once' });
  ws.lose(); // before it was stored, so before its ACK
  c.retryNow();
  const ws2 = FakeSocket.all.at(-1);
  ws2.open();
  ws2.welcome(1, P.FLAG_ACKS | P.FLAG_CONV);
  ws2.msg(5, { id: 30, payload: 'once' }); // the server sends it again
  ws2.msg(5, { id: 31, payload: 'next' });
  release();
  await settle();
  await settle();
  assert.deepEqual(got, [30n, 31n]);
  assert.deepEqual(acks(ws), [], 'the lost connection acknowledged nothing');
  assert.equal(acks(ws2).at(-1), 2);
});

test('unit: MSG: malformed, or not this user\'s, drops the connection unacknowledged', async () => {
  const cases = [
    (ws) => ws.frame(5, P.MSG, new Uint8Array(21)),
    (ws) => ws.msg(5, { id: 1, to: 2 }), // to another user
    (ws) => ws.msg(5, { id: 1, own: true, to: 2 }), // own, but by another author
    (ws) => ws.msg(0, { id: 1 }), // from the server's id
  ];
  for (const send of cases) {
    const got = [];
    const { c, ws } = connect({ device: 'd', onMessage: async (m) => got.push(m) });
    ws.open();
    ws.welcome(1, P.FLAG_ACKS | P.FLAG_CONV);
    send(ws);
    await settle();
    assert.equal(c.state, 'backoff', String(send));
    assert.deepEqual([got.length, acks(ws).length], [0, 0], String(send));
  }
});

// --------------------------------------- groups (GROUP, GROUPS) and history

// Bytes from a list of [size, value] fields and byte arrays, big-endian:
// the frames below are written here from docs/PROTOCOL.md, not by proto.js.
function bytes(...parts) {
  const out = [];
  for (const p of parts) {
    if (p instanceof Uint8Array || Array.isArray(p) && typeof p[0] !== 'number') out.push(...p);
    else {
      const [size, value] = p;
      let x = BigInt(value);
      const b = [];
      for (let i = 0; i < size; i++, x >>= 8n) b.unshift(Number(x & 255n));
      out.push(...b);
    }
  }
  return new Uint8Array(out);
}
const u8 = (v) => [1, v];
const u16 = (v) => [2, v];
const u32 = (v) => [4, v];
const u64 = (v) => [8, v];
const name8 = (s) => bytes(u8(text(s).length), text(s));

// A GROUPS body: op, req, group, then the rest.
const groupsBody = (op, req, group, ...rest) => bytes(u8(op), u32(req), u32(group), ...rest);
// A history entry: id, sender, kind, flags, to, time, len, payload.
const entry = ({ id, sender, kind = P.TEXT, flags = 0, to, time = 1700000000000, payload = '' }) =>
  bytes(u64(id), u32(sender), u8(kind), u8(flags), u32(to), u64(time), u32(text(payload).length), text(payload));

test('unit: codec: GROUP ops byte by byte', () => {
  const body = (f) => [...f.subarray(P.C2S_HDR)];
  const create = P.encodeGroup(7, P.G_CREATE, 0x80000001, 0, { name: 'Trip ✈', users: [8, 0xffffffff] });
  assert.deepEqual([...create.subarray(0, P.C2S_HDR)], [0, 0, 0, 7, 0, 0, 0, 0, P.GROUP, 0, 0, 0, 9 + 1 + 8 + 2 + 8]);
  assert.deepEqual(body(create), [...bytes(u8(1), u32(0x80000001), u32(0), name8('Trip ✈'), u16(2), u32(8), u32(0xffffffff))]);
  assert.deepEqual(body(P.encodeGroup(7, P.G_RENAME, 5, 3, { name: 'x' })), [...bytes(u8(2), u32(5), u32(3), name8('x'))]);
  assert.deepEqual(body(P.encodeGroup(7, P.G_ADD, 5, 3, { users: [9] })), [...bytes(u8(3), u32(5), u32(3), u16(1), u32(9))]);
  assert.deepEqual(body(P.encodeGroup(7, P.G_REMOVE, 5, 3, { users: [9, 10] })), [...bytes(u8(4), u32(5), u32(3), u16(2), u32(9), u32(10))]);
  assert.deepEqual(body(P.encodeGroup(7, P.G_LEAVE, 5, 3)), [...bytes(u8(5), u32(5), u32(3))]);
  assert.deepEqual(body(P.encodeGroup(7, P.G_LIST, 5, 0)), [...bytes(u8(6), u32(5), u32(0))]);
  assert.deepEqual(body(P.encodeGroup(7, P.G_MEMBERS, 5, 3)), [...bytes(u8(7), u32(5), u32(3))]);
  // A CREATE with no one else: count 0. A name of exactly 64 bytes.
  assert.deepEqual(body(P.encodeGroup(7, P.G_CREATE, 1, 0, { name: 'é'.repeat(32) })).slice(9), [64, ...text('é'.repeat(32)), 0, 0]);
  const bad = [
    [P.G_CREATE, 0, { name: '' }], // name missing
    [P.G_CREATE, 0, { name: 'é'.repeat(32) + 'x' }], // 65 bytes
    [P.G_RENAME, 3, {}],
    [P.G_CREATE, 0, { name: 'a', users: [0] }], // user 0
    [P.G_CREATE, 0, { name: 'a', users: [2 ** 32] }],
    [P.G_ADD, 3, { users: [] }],
    [P.G_LIST, 3, {}], // LIST names no group
    [P.G_MEMBERS, 0, {}], // MEMBERS needs one
    [0, 3, {}],
    [P.G_EVENT, 3, {}], // EVENT is the server's
  ];
  for (const [op, group, args] of bad)
    assert.throws(() => P.encodeGroup(7, op, 1, group, args), P.ProtoError, JSON.stringify([op, group, args]));
  assert.throws(() => P.encodeGroup(7, P.G_LIST, 2 ** 32, 0), P.ProtoError, 'req over 32 bits');
});

test('unit: codec: GROUPS answers and events decode', () => {
  assert.deepEqual(P.parseGroups(groupsBody(P.G_CREATE, 0x80000002, 42)), { op: P.G_CREATE, req: 0x80000002, group: 42 });
  const list = P.parseGroups(groupsBody(P.G_LIST, 9, 0, u16(2),
    u32(42), u8(1), u16(3), name8('Trip ✈'),
    u32(43), u8(0x80), u16(1024), name8('Ω')));
  assert.deepEqual(list, { op: P.G_LIST, req: 9, group: 0, groups: [
    { id: 42, admin: true, members: 3, name: 'Trip ✈' },
    { id: 43, admin: false, members: 1024, name: 'Ω' }] });
  assert.deepEqual(P.parseGroups(groupsBody(P.G_LIST, 9, 0, u16(0))).groups, []);
  const members = P.parseGroups(groupsBody(P.G_MEMBERS, 9, 42, u16(2), u32(7), u8(1), u32(8), u8(0)));
  assert.deepEqual(members.members, [{ user: 7, admin: true }, { user: 8, admin: false }]);
  const ev = P.parseGroups(groupsBody(P.G_EVENT, 0, 42, u8(P.EV_ADDED), u32(7), u16(2), u32(8), u32(9), name8('Trip')));
  assert.deepEqual(ev, { op: P.G_EVENT, req: 0, group: 42, what: P.EV_ADDED, by: 7, users: [8, 9], name: 'Trip' });
  const renamed = P.parseGroups(groupsBody(P.G_EVENT, 0, 42, u8(P.EV_RENAMED), u32(7), u16(0), name8('New')));
  assert.deepEqual([renamed.what, renamed.users, renamed.name], [P.EV_RENAMED, [], 'New']);
});

test('unit: codec: a malformed GROUPS is refused', () => {
  const bad = {
    'shorter than its prefix': bytes(u8(P.G_CREATE), u32(1), u16(0)),
    'unknown op': groupsBody(9, 1, 42),
    'op 0': groupsBody(0, 1, 42),
    'bytes after an answer': groupsBody(P.G_RENAME, 1, 42, u8(0)),
    'LIST count past the end': groupsBody(P.G_LIST, 1, 0, u16(2), u32(42), u8(1), u16(3), name8('a')),
    'LIST name past the end': groupsBody(P.G_LIST, 1, 0, u16(1), u32(42), u8(1), u16(3), u8(5), text('abc')),
    'MEMBERS cut in a member': groupsBody(P.G_MEMBERS, 1, 42, u16(1), u32(7)),
    'MEMBERS of group 0': groupsBody(P.G_MEMBERS, 1, 0, u16(0)),
    'EVENT of an unknown kind': groupsBody(P.G_EVENT, 0, 42, u8(6), u32(7), u16(0), name8('a')),
    'EVENT users past the end': groupsBody(P.G_EVENT, 0, 42, u8(P.EV_ADDED), u32(7), u16(3), u32(8), name8('a')),
    'EVENT without its name': groupsBody(P.G_EVENT, 0, 42, u8(P.EV_LEFT), u32(7), u16(0)),
  };
  for (const [why, b] of Object.entries(bad)) assert.throws(() => P.parseGroups(b), P.ProtoError, why);
});

test('unit: codec: HISTORY byte by byte, and what the server would call malformed', () => {
  const f = P.encodeHistory(7, 0x80000003, P.H_GROUP, 42, 1000n, 50);
  assert.deepEqual([...f], [...bytes(u32(7), u32(0), u8(P.HISTORY), u32(19), u32(0x80000003), u8(2), u32(42), u64(1000), u16(50))]);
  assert.deepEqual([...P.encodeHistory(7, 1, P.H_USER, 8, 0n, 200).subarray(P.C2S_HDR)],
    [...bytes(u32(1), u8(1), u32(8), u64(0), u16(200))]);
  const bad = [[3, 8, 0n, 50], [0, 8, 0n, 50], [P.H_USER, 0, 0n, 50], [P.H_USER, 8, 0n, 0], [P.H_USER, 8, 0n, 201],
    [P.H_USER, 8, 5, 50], [P.H_USER, 8, 1n << 64n, 50], [P.H_USER, 8, -1n, 50]];
  for (const [kind, peer, before, limit] of bad)
    assert.throws(() => P.encodeHistory(7, 1, kind, peer, before, limit), P.ProtoError, String([kind, peer, before, limit]));
});

test('unit: codec: a history page decodes newest first; a malformed one is refused', () => {
  const page = P.parseHistoryPage(bytes(u32(0x80000004), u8(1), u16(2),
    entry({ id: 12, sender: 8, kind: P.TEXT, flags: P.MSG_GROUP, to: 42, time: 1700000000123, payload: 'newer 🌙' }),
    entry({ id: 10, sender: 7, kind: P.PICTURE, flags: P.MSG_OWN | P.MSG_GROUP, to: 42, payload: 'png' })));
  assert.equal(page.req, 0x80000004);
  assert.equal(page.more, true);
  assert.deepEqual(page.entries.map((e) => ({ ...e, payload: untext(e.payload) })), [
    { id: 12n, sender: 8, kind: P.TEXT, own: false, group: true, to: 42, time: 1700000000123, payload: 'newer 🌙' },
    { id: 10n, sender: 7, kind: P.PICTURE, own: true, group: true, to: 42, time: 1700000000000, payload: 'png' }]);
  // The empty page of a server without history (--history-ttl 0).
  assert.deepEqual(P.parseHistoryPage(bytes(u32(5), u8(0), u16(0))), { req: 5, more: false, entries: [] });
  const one = (e) => bytes(u32(5), u8(0), u16(1), entry({ id: 3, sender: 8, to: 7, ...e }));
  const bad = {
    'under 7 bytes': bytes(u32(5), u8(0), u8(0)),
    'count past the end': bytes(u32(5), u8(0), u16(2), entry({ id: 3, sender: 8, to: 7 })),
    'bytes after the entries': bytes(one({}), u8(0)),
    'payload past the end': one({ payload: 'abc' }).subarray(0, 7 + 30 + 2),
    'kind 0': one({ kind: 0 }),
    'kind 5': one({ kind: 5 }),
    'sender 0': one({ sender: 0 }),
    'to 0': one({ to: 0 }),
    'oldest first': bytes(u32(5), u8(0), u16(2), entry({ id: 3, sender: 8, to: 7 }), entry({ id: 4, sender: 8, to: 7 })),
    'the same id twice': bytes(u32(5), u8(0), u16(2), entry({ id: 3, sender: 8, to: 7 }), entry({ id: 3, sender: 8, to: 7 })),
  };
  for (const [why, b] of Object.entries(bad)) assert.throws(() => P.parseHistoryPage(b), P.ProtoError, why);
});

test('unit: codec: POST and MSG with the GROUP flag', () => {
  const f = P.encodePost(7, 42, P.TEXT, 5n, text('hi'), P.MSG_GROUP);
  assert.deepEqual([...f], [...bytes(u32(7), u32(42), u8(P.POST), u32(12), u8(P.TEXT), u8(2), u64(5)), ...text('hi')]);
  assert.throws(() => P.postHeader(7, 42, P.TEXT, 5n, 0, P.MSG_OWN), P.ProtoError, 'OWN is not for POST');
  const m = P.parseMsg(msgBody({ id: 9, kind: P.TEXT, flags: P.MSG_GROUP, to: 42, time: 0, payload: text('x') }));
  assert.deepEqual([m.group, m.own, m.to], [true, false, 42]);
  assert.equal(P.parseMsg(msgBody({ id: 9, kind: P.TEXT, flags: 0, to: 42, time: 0, payload: text('x') })).group, false);
});

// A connection of user 1 with CONV granted, and what it emitted.
function convReady(opts = {}) {
  const r = connect({ device: 'web-test0001', ...opts });
  for (const name of ['group-event', 'unsupported']) r.c.addEventListener(name, (ev) => r.events.push({ event: name, ...ev.detail }));
  r.ws.open();
  r.ws.welcome(1, P.FLAG_ACKS | P.FLAG_CONV);
  return r;
}
// The request number of the last request sent (GROUP: at 1; HISTORY: at 0).
const lastReq = (ws) => {
  const f = ws.frames().at(-1);
  return new DataView(f.body.buffer, f.body.byteOffset).getUint32(f.type === P.GROUP ? 1 : 0);
};

test('unit: group messages: POST with the GROUP flag; MSGs reach the page with their group', async () => {
  const got = [];
  const { c, ws } = convReady({ onMessage: async (m) => got.push({ ...m, body: untext(m.body) }) });
  c.enqueue({ key: 1, to: 42, group: true, type: P.TEXT, body: text('to the group'), cid: 9n });
  c.enqueue({ key: 2, to: 8, type: P.TEXT, body: text('to a user'), cid: 10n });
  assert.deepEqual(ws.frames().slice(1).map((f) => [f.type, f.receiver, f.flags, f.cid, untext(f.payload)]),
    [[P.POST, 42, P.MSG_GROUP, 9n, 'to the group'], [P.POST, 8, 0, 10n, 'to a user']]);
  ws.frame(8, P.MSG, msgBody({ id: 20, kind: P.TEXT, flags: P.MSG_GROUP, to: 42, time: 5, payload: text('from 8') }));
  ws.frame(1, P.MSG, msgBody({ id: 21, kind: P.TEXT, flags: P.MSG_GROUP | P.MSG_OWN, to: 42, time: 6, payload: text('mine') }));
  await settle();
  assert.deepEqual(got, [
    { sender: 8, peer: 42, group: true, type: P.TEXT, body: 'from 8', own: false, id: 20n, time: 5 },
    { sender: 1, peer: 42, group: true, type: P.TEXT, body: 'mine', own: true, id: 21n, time: 6 }]);
  assert.equal(acks(ws).at(-1), 2);
  // A group MSG by this user without OWN cannot be (a device never gets its
  // own messages back): the connection is dropped, unacknowledged.
  ws.frame(1, P.MSG, msgBody({ id: 22, kind: P.TEXT, flags: P.MSG_GROUP, to: 42, time: 7, payload: text('?') }));
  await settle();
  assert.equal(c.state, 'backoff');
  assert.equal(got.length, 2);
});

test('unit: a group message without CONV is refused, not sent as a bare frame', () => {
  const { c, events, ws } = connect({ device: 'web-test0001' });
  ws.open();
  ws.welcome(1, P.FLAG_ACKS); // no CONV
  c.enqueue({ key: 1, to: 42, group: true, type: P.TEXT, body: text('to the group') });
  c.enqueue({ key: 2, to: 8, type: P.TEXT, body: text('to a user') });
  assert.deepEqual(named(events, 'refused').map((e) => [e.key, e.name]), [[1, 'GROUP']]);
  assert.deepEqual(ws.frames().slice(1).map((f) => [f.type, f.receiver]), [[P.TEXT, 8]]);
});

test('unit: requests: a GROUP answer settles its request; events are emitted; ERROR GROUP refuses the right one', async () => {
  const { c, events, ws } = convReady();
  const list = c.groupOp(P.G_LIST, 0);
  const reqList = lastReq(ws);
  assert.ok(reqList >= 0x80000000, 'request numbers are apart from sequence numbers');
  const create = c.groupOp(P.G_CREATE, 0, { name: 'Trip', users: [8] });
  const reqCreate = lastReq(ws);
  assert.notEqual(reqCreate, reqList);
  // A message to a group this user is not in: ERROR GROUP whose ref is its
  // sequence number (1), not a request's.
  c.enqueue({ key: 'm1', to: 43, group: true, type: P.TEXT, body: text('x') });
  ws.frame(0, P.GROUPS, groupsBody(P.G_EVENT, 0, 42, u8(P.EV_CREATED), u32(1), u16(1), u32(8), name8('Trip')));
  ws.frame(0, P.GROUPS, groupsBody(P.G_LIST, reqList, 0, u16(1), u32(42), u8(1), u16(2), name8('Trip')));
  ws.error(14, reqCreate, 'a group has at most 1 members');
  ws.error(14, 1, 'not a member of group 43');
  assert.deepEqual((await list).groups, [{ id: 42, admin: true, members: 2, name: 'Trip' }]);
  await assert.rejects(create, (e) => e.why === 'refused' && e.code === 14 && e.codeName === 'GROUP' && /at most 1/.test(e.message));
  assert.deepEqual(named(events, 'group-event').map((e) => [e.group, e.what, e.by, e.users, e.name]), [[42, P.EV_CREATED, 1, [8], 'Trip']]);
  assert.deepEqual(named(events, 'refused').map((e) => [e.key, e.name, e.reason]), [['m1', 'GROUP', 'not a member of group 43']]);
  assert.deepEqual(named(events, 'server-error').map((e) => e.ref), [1], 'a refused request is its caller\'s, not a server error');
  assert.equal(c.requests.size, 0);
});

test('unit: requests: a history page settles its request; a lost connection rejects what waits', async () => {
  const { c, ws } = convReady();
  const h = c.history(P.H_USER, 8, 0n, 50);
  const f = ws.frames().at(-1);
  assert.deepEqual([f.type, f.body.length, f.body[4]], [P.HISTORY, 19, P.H_USER]);
  const req = lastReq(ws);
  ws.frame(0, P.HISTORY_PAGE, bytes(u32(req), u8(0), u16(1), entry({ id: 3, sender: 8, to: 1, payload: 'old' })));
  const page = await h;
  assert.deepEqual([page.more, page.entries.map((e) => untext(e.payload))], [false, ['old']]);
  const waiting = [c.history(P.H_GROUP, 42, 3n, 50), c.groupOp(P.G_MEMBERS, 42)];
  ws.lose();
  for (const p of waiting) await assert.rejects(p, (e) => e.why === 'lost');
  // Not connected: refused at once, nothing sent.
  await assert.rejects(c.groupOp(P.G_LIST, 0), (e) => e.why === 'offline');
  // A page that answers nothing is ignored; a malformed one drops the connection.
  c.retryNow();
  const ws2 = FakeSocket.all.at(-1);
  ws2.open();
  ws2.welcome(1, P.FLAG_ACKS | P.FLAG_CONV);
  ws2.frame(0, P.HISTORY_PAGE, bytes(u32(0x80001234), u8(0), u16(0)));
  assert.equal(c.state, 'ready');
  ws2.frame(0, P.HISTORY_PAGE, bytes(u32(0x80001234), u8(0), u16(1)));
  assert.equal(c.state, 'backoff');
});

test('unit: requests: ERROR BADTYPE from a server without HISTORY, or without groups', async () => {
  // Groups known (LIST answered): the unknown frame is the HISTORY.
  const a = convReady();
  const list = a.c.groupOp(P.G_LIST, 0);
  a.ws.frame(0, P.GROUPS, groupsBody(P.G_LIST, lastReq(a.ws), 0, u16(0)));
  await list;
  const h = a.c.history(P.H_USER, 8, 0n, 50);
  a.ws.error(2, 0, 'unknown frame type 138');
  await assert.rejects(h, (e) => e.why === 'unsupported');
  assert.deepEqual(named(a.events, 'unsupported').map((e) => e.kinds), [['history']]);
  assert.deepEqual(named(a.events, 'server-error'), [], 'expected of an older server: not shown as an error');
  await assert.rejects(a.c.history(P.H_USER, 8, 0n, 50), (e) => e.why === 'unsupported', 'not asked again on this connection');
  assert.equal(a.ws.frames().filter((f) => f.type === P.HISTORY).length, 1);
  // Groups still work on it.
  const members = a.c.groupOp(P.G_MEMBERS, 42);
  assert.equal(a.ws.frames().at(-1).type, P.GROUP);
  a.ws.frame(0, P.GROUPS, groupsBody(P.G_MEMBERS, lastReq(a.ws), 42, u16(1), u32(1), u8(1)));
  assert.deepEqual((await members).members, [{ user: 1, admin: true }]);
  // No groups either: LIST waits first; everything that waits fails.
  const b = convReady();
  const waiting = [b.c.groupOp(P.G_LIST, 0), b.c.history(P.H_USER, 8, 0n, 50)];
  b.ws.error(2, 0, 'unknown frame type 136');
  for (const p of waiting) await assert.rejects(p, (e) => e.why === 'unsupported');
  assert.deepEqual(named(b.events, 'unsupported').map((e) => e.kinds), [['group', 'history']]);
  // A BADTYPE while nothing waits is the server's error, shown as before.
  const d = convReady();
  d.ws.error(2, 0, 'unknown frame type 200');
  assert.equal(named(d.events, 'server-error').length, 1);
});

test('unit: requests: ERROR STORE without a ref fails the oldest history request (a page the server could not read)', async () => {
  const { c, events, ws } = convReady();
  const first = c.history(P.H_USER, 8, 0n, 50);
  const second = c.history(P.H_USER, 9, 0n, 50);
  const reqSecond = lastReq(ws);
  ws.error(8, 0, 'history not read: disk I/O error');
  await assert.rejects(first, (e) => e.why === 'refused' && /disk I\/O/.test(e.message));
  ws.frame(0, P.HISTORY_PAGE, bytes(u32(reqSecond), u8(0), u16(0)));
  assert.deepEqual((await second).entries, []);
  assert.deepEqual(named(events, 'server-error'), []);
  ws.error(8, 0, 'another store error'); // nothing waits: the server's error
  assert.equal(named(events, 'server-error').length, 1);
});

// ------------------------------------------- receipts, typing, presence

// A RECEIPT body as docs/PROTOCOL.md lays it out: what, flags, conv, by, upto, time.
const receiptBody = (what, flags, conv, by, upto, time = 0) => bytes(u8(what), u8(flags), u32(conv), u32(by), u64(upto), u64(time));

test('unit: codec: RECEIPT from the client, byte by byte (READ, QUERY), and what it may not send', () => {
  assert.deepEqual([P.RECEIPT, P.TYPING, P.PRESENCE, P.RECEIPT_SIZE, P.TYPING_SIZE], [0x8c, 0x8d, 0x8e, 26, 6]);
  const read = P.encodeReceipt(7, P.R_READ, 9, 0x0102030405060708n);
  assert.deepEqual([...read], [...bytes(u32(7), u32(0), u8(0x8c), u32(26),
    u8(2), u8(0), u32(9), u32(0), u64(0x0102030405060708n), u64(0))]);
  const query = P.encodeReceipt(7, P.R_QUERY, 42, 0n, true);
  assert.deepEqual([...query.subarray(P.C2S_HDR)], [...receiptBody(3, 0x02, 42, 0, 0)]);
  assert.equal(query.length, P.C2S_HDR + 26);
  const bad = [
    [P.R_DELIVERED, 9, 1n], [P.R_END, 9, 0n], [0, 9, 0n], [5, 9, 0n], // not the client's
    [P.R_READ, 0, 1n], // conv 0
    [P.R_READ, 9, 1], // upto not a BigInt
    [P.R_READ, 9, 1n << 64n], [P.R_READ, 9, -1n],
    [P.R_QUERY, 9, 5n], // a QUERY has upto 0
  ];
  for (const [what, conv, upto] of bad)
    assert.throws(() => P.encodeReceipt(7, what, conv, upto), P.ProtoError, String([what, conv, upto]));
});

test('unit: codec: RECEIPT from the server decodes; malformed ones are refused', () => {
  assert.deepEqual(P.parseReceipt(receiptBody(1, 0, 9, 9, (1n << 63n) + 1n, 1700000000123)),
    { what: P.R_DELIVERED, group: false, conv: 9, by: 9, upto: (1n << 63n) + 1n, time: 1700000000123 });
  assert.deepEqual(P.parseReceipt(receiptBody(2, 0x02, 42, 8, 77, 5)),
    { what: P.R_READ, group: true, conv: 42, by: 8, upto: 77n, time: 5 });
  // A mark never set (upto 0), END (by 0), a reserved flag bit ignored.
  assert.equal(P.parseReceipt(receiptBody(2, 0, 9, 9, 0)).upto, 0n);
  assert.deepEqual(P.parseReceipt(receiptBody(4, 0x82, 42, 0, 0)), { what: P.R_END, group: true, conv: 42, by: 0, upto: 0n, time: 0 });
  const good = receiptBody(1, 0, 9, 9, 1);
  const bad = {
    '25 bytes': good.subarray(0, 25),
    '27 bytes': bytes(good, u8(0)),
    'empty': new Uint8Array(0),
    'what 0': receiptBody(0, 0, 9, 9, 1),
    'QUERY (the client\'s)': receiptBody(3, 0, 9, 0, 0),
    'what 5': receiptBody(5, 0, 9, 9, 1),
    'conv 0': receiptBody(1, 0, 0, 9, 1),
    'a mark by user 0': receiptBody(2, 0, 9, 0, 1),
  };
  for (const [why, b] of Object.entries(bad)) assert.throws(() => P.parseReceipt(b), P.ProtoError, why);
});

test('unit: codec: TYPING both ways', () => {
  assert.deepEqual([...P.encodeTyping(7, 9, 1)], [...bytes(u32(7), u32(0), u8(0x8d), u32(6), u8(0), u32(9), u8(1))]);
  assert.deepEqual([...P.encodeTyping(7, 42, 0, true).subarray(P.C2S_HDR)], [...bytes(u8(2), u32(42), u8(0))]);
  for (const [to, state] of [[0, 1], [9, 2], [9, true], [2 ** 32, 1]])
    assert.throws(() => P.encodeTyping(7, to, state), P.ProtoError, String([to, state]));
  assert.deepEqual(P.parseTyping(bytes(u8(0), u32(7), u8(1))), { group: false, to: 7, typing: true });
  assert.deepEqual(P.parseTyping(bytes(u8(2), u32(42), u8(0))), { group: true, to: 42, typing: false });
  const bad = {
    '5 bytes': bytes(u8(0), u32(7)),
    '7 bytes': bytes(u8(0), u32(7), u8(1), u8(0)),
    'state 2': bytes(u8(0), u32(7), u8(2)),
    'to 0': bytes(u8(0), u32(0), u8(1)),
  };
  for (const [why, b] of Object.entries(bad)) assert.throws(() => P.parseTyping(b), P.ProtoError, why);
});

test('unit: codec: PRESENCE requests byte by byte; states decode; malformed ones are refused', () => {
  assert.deepEqual([...P.encodePresence(7, P.PRES_SUBSCRIBE, [9, 0xffffffff])],
    [...bytes(u32(7), u32(0), u8(0x8e), u32(11), u8(1), u16(2), u32(9), u32(0xffffffff))]);
  assert.deepEqual([...P.encodePresence(7, P.PRES_UNSUBSCRIBE, [9]).subarray(P.C2S_HDR)], [...bytes(u8(2), u16(1), u32(9))]);
  const many = Array.from({ length: 256 }, (_, i) => i + 1);
  assert.equal(P.encodePresence(7, P.PRES_SUBSCRIBE, many).length, P.C2S_HDR + 3 + 4 * 256);
  for (const [op, users] of [[0, [9]], [3, [9]], [1, []], [1, [...many, 257]], [1, [9, 0]], [1, 9]])
    assert.throws(() => P.encodePresence(7, op, users), P.ProtoError, String([op, users]));
  assert.deepEqual(P.parsePresence(bytes(u32(9), u8(1), u64(0))), { user: 9, online: true, lastSeen: 0 });
  assert.deepEqual(P.parsePresence(bytes(u32(9), u8(0), u64(1700000000123))), { user: 9, online: false, lastSeen: 1700000000123 });
  const bad = {
    '12 bytes': bytes(u32(9), u8(0), u32(0), u8(0), u16(0)),
    '14 bytes': bytes(u32(9), u8(0), u64(0), u8(0)),
    'user 0': bytes(u32(0), u8(1), u64(0)),
    'state 2': bytes(u32(9), u8(2), u64(0)),
  };
  for (const [why, b] of Object.entries(bad)) assert.throws(() => P.parsePresence(b), P.ProtoError, why);
  assert.equal(P.ERROR_NAMES[15], 'DENIED');
});

// A connection of user 1 with CONV and SIGNALS granted, its signal events recorded.
function signalsReady(flags = P.FLAG_ACKS | P.FLAG_CONV | P.FLAG_SIGNALS) {
  const r = connect({ device: 'web-test0001' });
  for (const name of ['receipt', 'typing', 'presence', 'presence-denied', 'signal-refused', 'welcome'])
    r.c.addEventListener(name, (ev) => r.events.push({ event: name, ...ev.detail }));
  r.ws.open();
  r.ws.welcome(1, flags);
  return r;
}

test('unit: SIGNALS granted: receipts, typing and presence go out at once and come in as events', () => {
  const { c, events, ws } = signalsReady();
  assert.equal(c.signals, true);
  assert.equal(named(events, 'welcome')[0].signals, true);
  assert.equal(c.read(9, false, 50n), true);
  assert.equal(c.queryReceipts(42, true), true);
  assert.equal(c.typing(9, false, 1), true);
  assert.equal(c.presence(P.PRES_SUBSCRIBE, Array.from({ length: 300 }, (_, i) => i + 2)), true);
  const out = ws.frames().slice(1);
  assert.deepEqual(out.map((f) => [f.type, f.receiver, f.body.length]),
    [[P.RECEIPT, 0, 26], [P.RECEIPT, 0, 26], [P.TYPING, 0, 6], [P.PRESENCE, 0, 3 + 4 * 256], [P.PRESENCE, 0, 3 + 4 * 44]]);
  assert.deepEqual([...out[0].body], [...receiptBody(2, 0, 9, 0, 50)]);
  assert.deepEqual([...out[1].body], [...receiptBody(3, 2, 42, 0, 0)]);
  assert.deepEqual([...out[4].body.subarray(0, 7)], [...bytes(u8(1), u16(44), u32(258))]);
  // Not messages: nothing queued, nothing to acknowledge.
  assert.equal(c.queued(), 0);
  ws.frame(0, P.RECEIPT, receiptBody(1, 0, 9, 9, 40, 123));
  ws.frame(9, P.TYPING, bytes(u8(0), u32(1), u8(1)));
  ws.frame(8, P.TYPING, bytes(u8(2), u32(42), u8(0)));
  ws.frame(0, P.PRESENCE, bytes(u32(9), u8(0), u64(1700000000000)));
  assert.deepEqual(named(events, 'receipt').map(({ event, ...r }) => r), [{ what: 1, group: false, conv: 9, by: 9, upto: 40n, time: 123 }]);
  assert.deepEqual(named(events, 'typing').map(({ event, ...t }) => t),
    [{ from: 9, group: false, to: 1, typing: true }, { from: 8, group: true, to: 42, typing: false }]);
  assert.deepEqual(named(events, 'presence').map(({ event, ...p }) => p), [{ user: 9, online: false, lastSeen: 1700000000000 }]);
  assert.deepEqual(acks(ws), [], 'signal frames are not acknowledged');
  assert.equal(c.state, 'ready');
  // A malformed one drops the connection.
  ws.frame(0, P.RECEIPT, receiptBody(1, 0, 9, 9, 40).subarray(0, 25));
  assert.equal(c.state, 'backoff');
});

test('unit: ERROR DENIED names a user, not a message; ERROR GROUP without a ref is a refused signal', () => {
  const { c, events, ws } = signalsReady();
  // Message 9 on this connection: a DENIED whose ref is 9 (user 9) must not refuse it.
  for (let k = 1; k <= 9; k++) c.enqueue({ key: k, to: 2, type: P.TEXT, body: text(`m${k}`) });
  ws.error(15, 9, 'you share no conversation with user 9');
  ws.error(14, 0, 'not a member of group 42');
  assert.deepEqual(named(events, 'presence-denied').map((e) => e.user), [9]);
  assert.equal(named(events, 'signal-refused').length, 1);
  assert.deepEqual(named(events, 'refused'), []);
  assert.deepEqual(named(events, 'server-error'), [], 'expected answers, not shown as errors');
  assert.equal(c.queued(), 9);
});

test('unit: SIGNALS not granted: nothing is sent, and a signal frame from the server is an error', () => {
  const { c, ws } = signalsReady(P.FLAG_ACKS | P.FLAG_CONV);
  assert.equal(c.signals, false);
  assert.deepEqual([c.read(9, false, 1n), c.queryReceipts(9, false), c.typing(9, false, 1), c.presence(1, [9])], [false, false, false, false]);
  assert.equal(ws.frames().length, 1, 'only the HELLO');
  ws.frame(9, P.TYPING, bytes(u8(0), u32(1), u8(1)));
  assert.equal(c.state, 'backoff');
  // SIGNALS is never taken without CONV (a server may not grant one alone).
  const r = signalsReady(P.FLAG_ACKS | P.FLAG_SIGNALS);
  assert.equal(r.c.signals, false);
  // No device (no CONV asked): HELLO asks for neither.
  const { ws: ws3 } = connect();
  ws3.open();
  assert.equal(ws3.frames()[0].body[1], P.FLAG_ACKS);
});

test('unit: codec: POSTED decodes cid and id byte by byte; another size or cid 0 is refused', () => {
  assert.deepEqual([P.POSTED, P.POSTED_SIZE], [0x8f, 16]);
  assert.deepEqual(P.parsePosted(bytes(u64(0x0102030405060708n), u64(0x1112131415161718n))),
    { cid: 0x0102030405060708n, id: 0x1112131415161718n });
  // Both fields are u64: the top bit is a value bit, not a sign.
  assert.deepEqual(P.parsePosted(bytes(u64((1n << 64n) - 1n), u64((1n << 63n) + 5n))),
    { cid: (1n << 64n) - 1n, id: (1n << 63n) + 5n });
  // A view into a larger buffer (as decodeS2C gives it) decodes the same.
  const framed = bytes(u32(0), u8(0x8f), u32(16), u64(7), u64(99));
  const f = P.decodeS2C(framed.buffer);
  assert.deepEqual([f.sender, f.type, P.parsePosted(f.body)], [0, P.POSTED, { cid: 7n, id: 99n }]);
  const good = bytes(u64(7), u64(99));
  const bad = {
    'empty': new Uint8Array(0),
    '8 bytes': good.subarray(0, 8),
    '15 bytes': good.subarray(0, 15),
    '17 bytes': bytes(good, u8(0)),
    '24 bytes': bytes(good, u64(1)),
    'cid 0': bytes(u64(0), u64(99)),
  };
  for (const [why, b] of Object.entries(bad)) assert.throws(() => P.parsePosted(b), P.ProtoError, why);
});

test('unit: POSTED names the queued message by its cid: \'posted\' with its key and server id, also for a resend', () => {
  const { c, events, ws } = signalsReady();
  c.addEventListener('posted', (ev) => events.push({ event: 'posted', ...ev.detail }));
  const posted = () => named(events, 'posted').map(({ key, cid, id }) => [key, cid, id]);
  c.enqueue({ key: 11, to: 2, type: P.TEXT, body: text('first'), cid: 501n });
  c.enqueue({ key: 12, to: 2, type: P.TEXT, body: text('second'), cid: 502n });
  c.enqueue({ key: 13, to: 2, type: P.TEXT, body: text('third'), cid: 503n });
  const postedFrame = (w, cid, id) => w.frame(0, P.POSTED, bytes(u64(cid), u64(id)));
  postedFrame(ws, 501n, 70n);
  postedFrame(ws, 999n, 71n); // no message of this connection: skipped
  postedFrame(ws, 502n, 0n); // id 0 names no message: skipped
  postedFrame(ws, 502n, 72n);
  assert.deepEqual(posted(), [[11, 501n, 70n], [12, 502n, 72n]]);
  assert.deepEqual(acks(ws), [], 'not a data frame: not acknowledged');
  assert.equal(c.queued(), 3, 'POSTED settles nothing: the ACK does');
  ws.ack(1);
  assert.deepEqual(named(events, 'acked').map((e) => e.key), [11]);
  postedFrame(ws, 501n, 70n); // acknowledged already: no longer queued
  assert.equal(posted().length, 2);
  // The connection is lost before the ACK of 12 and 13; the resends get
  // POSTED again (12 with the id it got before: the server recognised it).
  ws.lose();
  c.retryNow();
  const ws2 = FakeSocket.all.at(-1);
  ws2.open();
  ws2.welcome(1, P.FLAG_ACKS | P.FLAG_CONV | P.FLAG_SIGNALS);
  assert.deepEqual(ws2.frames().slice(1).map((f) => f.cid), [502n, 503n]);
  postedFrame(ws2, 502n, 72n);
  postedFrame(ws2, 503n, 74n);
  assert.deepEqual(posted().slice(2), [[12, 502n, 72n], [13, 503n, 74n]]);
  assert.equal(c.state, 'ready');
  // Malformed: dropped, nothing acknowledged.
  ws2.frame(0, P.POSTED, bytes(u64(503n), u64(74n)).subarray(0, 15));
  assert.equal(c.state, 'backoff');
  const r = signalsReady();
  r.ws.frame(0, P.POSTED, bytes(u64(0), u64(74n)));
  assert.equal(r.c.state, 'backoff', 'cid 0');
  // Without SIGNALS no POSTED may come.
  const r2 = signalsReady(P.FLAG_ACKS | P.FLAG_CONV);
  r2.c.enqueue({ key: 1, to: 2, type: P.TEXT, body: text('x'), cid: 9n });
  r2.ws.frame(0, P.POSTED, bytes(u64(9n), u64(1n)));
  assert.equal(r2.c.state, 'backoff');
});

// An element of an own message as signals.js reads it: data-msg-id, or data-after.
const li = (d) => ({ dataset: { ...d } });

test('unit: ticks: a mark covers an own message by its id, or by the id known when it was written', () => {
  const app = { user: 1, conn: null, peer: 9 };
  const members = new Map([[42, 4]]);
  const s = new Signals(app, { ticks() {}, refresh() {}, head() {}, readUpTo() {}, members: (g) => members.get(g) || 0 });
  s.on = true;
  const level = (d, key = 9) => s.receiptOf(li(d), key).level;
  const mark = (what, conv, by, upto, group = false) => s.onReceipt({ what, group, conv, by, upto: BigInt(upto), time: 0 });
  assert.equal(level({ msgId: '10' }), '', 'no mark yet');
  mark(P.R_DELIVERED, 9, 9, 0); // never set: covers nothing
  assert.equal(level({ after: '0' }), '');
  mark(P.R_DELIVERED, 9, 9, 12);
  assert.deepEqual([level({ msgId: '10' }), level({ msgId: '12' }), level({ msgId: '13' })], ['delivered', 'delivered', '']);
  assert.deepEqual([level({ after: '11' }), level({ after: '12' })], ['delivered', ''], 'written when 11 (12) was known: its id is above');
  mark(P.R_READ, 9, 9, 11);
  assert.deepEqual([level({ msgId: '11' }), level({ msgId: '12' })], ['read', 'delivered']);
  mark(P.R_DELIVERED, 9, 9, 5); // marks only move forward
  assert.equal(level({ msgId: '12' }), 'delivered');
  assert.equal(level({}), '', 'neither id nor after: nothing');
  // A mark by another user of a 1:1 conversation counts for nothing there.
  mark(P.R_READ, 9, 5, 100);
  assert.equal(level({ msgId: '12' }), 'delivered');
  // A group of 4: ✓ once one other member has it, ✓✓ once all three read it.
  const g = (d) => s.receiptOf(li(d), 'g42');
  mark(P.R_DELIVERED, 42, 1, 50, true); // this user's own: not counted
  mark(P.R_READ, 42, 1, 50, true);
  assert.deepEqual(g({ msgId: '20' }), { level: '', readers: 0, total: 3 });
  mark(P.R_DELIVERED, 42, 5, 20, true);
  assert.deepEqual(g({ msgId: '20' }), { level: 'delivered', readers: 0, total: 3 });
  mark(P.R_READ, 42, 5, 20, true);
  mark(P.R_READ, 42, 6, 30, true);
  assert.deepEqual(g({ msgId: '20' }), { level: 'delivered', readers: 2, total: 3 });
  assert.deepEqual(g({ msgId: '25' }), { level: 'delivered', readers: 1, total: 3 });
  mark(P.R_READ, 42, 7, 20, true);
  assert.deepEqual(g({ msgId: '20' }), { level: 'read', readers: 3, total: 3 });
  // The highest id any mark named is a lower bound for the next message's.
  assert.equal(s.known(), 100n);
  s.sawId(140n); // and any id POSTED gave
  s.sawId(120n);
  assert.equal(s.known(), 140n);
});

test('unit: ticks are exact with the ids POSTED gave: a mark between two messages written at once ticks only the first', () => {
  const app = { user: 1, conn: null, peer: 9 };
  const s = new Signals(app, { ticks() {}, refresh() {}, head() {}, readUpTo() {}, members: () => 0 });
  s.on = true;
  const mark = (what, upto) => s.onReceipt({ what, group: false, conv: 9, by: 9, upto: BigInt(upto), time: 0 });
  // Two messages written when 40 was the highest id known (both after 40);
  // POSTED gave them 41 and 42. The peer has both, and read only 41.
  const first = li({ after: '40', msgId: '41' }), second = li({ after: '40', msgId: '42' });
  mark(P.R_DELIVERED, 42);
  mark(P.R_READ, 41);
  assert.equal(s.receiptOf(first).level, 'read');
  assert.equal(s.receiptOf(second).level, 'delivered', 'READ 41 does not cover 42');
  // The fallback alone (no id) would have called both read: why ids matter.
  assert.equal(s.receiptOf(li({ after: '40' })).level, 'read');
  mark(P.R_READ, 42);
  assert.equal(s.receiptOf(second).level, 'read');
});

test('unit: own READ from another device, typing expiry, presence texts', async () => {
  const app = { user: 1, conn: null, peer: 0 };
  const reads = [];
  const s = new Signals(app, { ticks() {}, refresh() {}, head() {}, readUpTo: (k, u) => reads.push([k, u]), members: () => 0 });
  s.on = true;
  s.onReceipt({ what: P.R_READ, group: false, conv: 9, by: 1, upto: 33n, time: 1 });
  s.onReceipt({ what: P.R_READ, group: true, conv: 42, by: 1, upto: 34n, time: 1 });
  s.onReceipt({ what: P.R_READ, group: false, conv: 8, by: 1, upto: 0n, time: 0 }); // never set
  assert.deepEqual(reads, [[9, 33n], ['g42', 34n]]);
  assert.equal(s.receiptOf(li({ msgId: '1' }), 9).level, '', 'own marks tick nothing');
  // A message at or under this user's READ of its conversation is not unread.
  assert.deepEqual([s.readElsewhere(9, 33n), s.readElsewhere(9, 34n), s.readElsewhere(8, 1n), s.readElsewhere(9, null)], [true, false, false, false]);
  s.onReceipt({ what: P.R_READ, group: false, conv: 9, by: 1, upto: 20n, time: 1 }); // lower: nothing
  assert.deepEqual(reads.length, 2);
  // A conversation that gets unread messages is asked (QUERY) once per connection.
  const asked = [];
  app.conn = { queryReceipts: (conv, group) => asked.push([conv, group]) };
  for (const k of [9, 'g42', 9, 'g42']) s.sawUnread(k);
  assert.deepEqual(asked, [[9, false], [42, true]]);
  // Typing: a 1 from 9 in the 1:1, one from 8 in the group; a 0 ends it.
  s.onTyping({ from: 9, group: false, to: 1, typing: true });
  s.onTyping({ from: 8, group: true, to: 42, typing: true });
  assert.deepEqual([...s.typists.keys()], [9, 'g42']);
  s.onTyping({ from: 8, group: true, to: 42, typing: false });
  assert.deepEqual([...s.typists.keys()], [9]);
  s.stopped(9, 9);
  assert.equal(s.typists.size, 0);
  // Presence texts; a refused user shows nothing.
  s.subscribed = new Set([9, 10, 11]);
  s.onPresence({ user: 9, online: true, lastSeen: 0 });
  s.onPresence({ user: 10, online: false, lastSeen: 0 });
  s.onPresence({ user: 12, online: true, lastSeen: 0 }); // not subscribed: ignored
  s.onDenied({ user: 11 });
  assert.deepEqual([s.presenceOf(9), s.presenceOf(10), s.presenceOf(11), s.presenceOf(12)],
    [{ state: 'online', text: 'online' }, { state: 'offline', text: '' }, null, null]);
  // Once a message between the two was accepted, the refused one is asked again.
  const sent = [];
  s.app.conn = { presence: (op, users) => sent.push([op, users]) || true, queryReceipts() {} };
  s.contacts = new Set([9, 10, 11]);
  s.shared(10); // not refused: nothing
  s.shared(11);
  assert.deepEqual(sent, [[P.PRES_SUBSCRIBE, [11]]]);
  assert.equal(s.presenceOf(11), null, 'nothing shown until the server answers');
  const now = new Date(2026, 11, 1, 23, 0);
  assert.match(lastSeenText(new Date(2026, 11, 1, 9, 5).getTime(), now), /^0?9:05/);
  assert.doesNotMatch(lastSeenText(new Date(2026, 10, 28, 9, 5).getTime(), now), /9:05/);
  assert.match(lastSeenText(new Date(2025, 10, 28).getTime(), now), /2025/);
});

test('unit: typing: state 1 at most every 3 s, 0 once; others\' typing expires 6 s after its last 1', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1000000 });
  try {
    const app = { user: 1, peer: 9, conn: null };
    const sent = [];
    app.conn = { typing: (to, group, state) => sent.push([to, group, state]) || true };
    const s = new Signals(app, { ticks() {}, refresh() {}, head() {}, readUpTo() {}, members: () => 0 });
    s.on = true;
    s.onInput('h');
    mock.timers.tick(1000);
    s.onInput('he');
    mock.timers.tick(2000);
    s.onInput('hel'); // 3 s after the first: a refresh
    s.onInput('');
    s.stopTyping(); // already stopped: nothing more
    app.peer = 'g42';
    s.onInput('x');
    s.stopTyping();
    assert.deepEqual(sent, [[9, false, 1], [9, false, 1], [9, false, 0], [42, true, 1], [42, true, 0]]);
    // Incoming: user 5 types to this user; refreshed at 4 s, it lasts to 10 s.
    app.peer = 0; // (not open: nothing to draw)
    s.onTyping({ from: 5, group: false, to: 1, typing: true });
    mock.timers.tick(4000);
    s.onTyping({ from: 5, group: false, to: 1, typing: true });
    mock.timers.tick(5999);
    assert.ok(s.typists.get(5)?.has(5), 'still typing 5.999 s after its refresh');
    mock.timers.tick(1);
    assert.equal(s.typists.has(5), false, 'expired 6 s after its last 1');
  } finally {
    mock.timers.reset();
  }
});
