// unit.mjs -- the web client's session (web/conn.js), codec and media
// helpers in Node, with a scripted WebSocket: the protocol's edges that a
// real server does not produce on demand. run.mjs runs these first.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import * as P from '../../web/proto.js';
import { ChatConnection, backoffMs, cidSource, newCid, BACKOFF_MAX_MS, BACKOFF_MIN_MS } from '../../web/conn.js';
import { sniffMime, typeOfFile } from '../../web/media.js';

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
    { id: (1n << 63n) + 5n, kind: P.PICTURE, own: true, to: 0xfffffffe, time: 1700000000123, payload: 'png' });
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
  assert.deepEqual([...hello.body], [1, P.FLAG_ACKS | P.FLAG_CONV, 12, ...text('web-test0001')]);
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
    { sender: 5, peer: 5, type: P.TEXT, body: 'from 5', own: false, id: 10n, time: 1700000000001 },
    { sender: 1, peer: 6, type: P.PICTURE, body: 'mine, to 6', own: true, id: 11n, time: 1700000000000 },
    { sender: 7, peer: 7, type: P.TEXT, body: 'bare', own: false, id: null, time: 0 },
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
