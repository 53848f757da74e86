// proto.js -- the chat frame codec (docs/PROTOCOL.md), pure functions over
// bytes: no I/O, no state. Over WebSocket each binary message carries exactly
// one frame, so decoding takes one whole message.

export const C2S_HDR = 13; // sender u32, receiver u32, type u8, len u32
export const S2C_HDR = 9; // sender u32, type u8, len u32

export const TEXT = 1;
export const PICTURE = 2;
export const VOICE = 3;
export const VIDEO = 4;
export const HELLO = 0x80;
export const WELCOME = 0x81;
export const ACK = 0x82;
export const ERROR = 0x83;
export const PING = 0x84;
export const PONG = 0x85;
export const MSG = 0x86; // s->c with CONV: a message of the user's log, with its server id
export const POST = 0x87; // c->s with CONV: a message with a client id (cid)

export const VERSION = 1;
export const FLAG_ACKS = 1; // HELLO/WELCOME: acknowledgements
export const FLAG_CONV = 2; // HELLO/WELCOME: devices and conversations (MSG, POST)
export const MSG_OWN = 1; // MSG flags: the author is this user, on another device
export const MSG_HDR = 22; // MSG body before the payload: id u64, kind u8, flags u8, to u32, time u64
export const POST_HDR = 10; // POST body before the payload: kind u8, flags u8, cid u64
export const DEVICE_MAX = 32; // bytes of a device name
const U64_MAX = (1n << 64n) - 1n;
export const PASSWORD_MAX = 1024; // bytes of UTF-8 in a HELLO
export const PING_MAX = 64; // bytes of a PING body
export const USER_MAX = 0xffffffff;

// ERROR codes by number, as docs/PROTOCOL.md names them.
export const ERROR_NAMES = Object.freeze({
  1: 'TOOBIG', 2: 'BADTYPE', 3: 'SPOOF', 4: 'PROTO', 5: 'AUTH', 6: 'NOLOGIN',
  7: 'QUOTA', 8: 'STORE', 9: 'RATE', 10: 'BUSY', 11: 'SHUTDOWN', 12: 'BADRCPT',
  13: 'SLOW',
});
export const ERR_TOOBIG = 1;
export const ERR_PROTO = 4;
export const ERR_AUTH = 5;
export const ERR_NOLOGIN = 6;

export class ProtoError extends Error {}

export function isData(type) {
  return type >= TEXT && type <= VIDEO;
}

// A valid user id: an integer 1..2^32-1 (0 is the server's).
export function isUserId(n) {
  return Number.isInteger(n) && n >= 1 && n <= USER_MAX;
}

// The 13-byte client->server header of a frame whose body is `len` bytes.
export function c2sHeader(sender, receiver, type, len) {
  const h = new Uint8Array(C2S_HDR);
  const v = new DataView(h.buffer);
  v.setUint32(0, sender);
  v.setUint32(4, receiver);
  v.setUint8(8, type);
  v.setUint32(9, len);
  return h;
}

// A header (and fields) followed by a body, in one new array.
export function joinFrame(hdr, body) {
  const f = new Uint8Array(hdr.length + body.length);
  f.set(hdr, 0);
  f.set(body, hdr.length);
  return f;
}

// A whole client->server frame (header + body) in one new array.
export function encodeFrame(sender, receiver, type, body) {
  return joinFrame(c2sHeader(sender, receiver, type, body.length), body);
}

// A valid device name: 0-32 ASCII letters, digits, '.', '_', '-' ('' is
// the user's default device).
export function isDeviceName(s) {
  return typeof s === 'string' && /^[A-Za-z0-9._-]{0,32}$/.test(s);
}

// HELLO: version, flags, with FLAG_CONV the device name (length u8, then
// its bytes), then the password bytes (may be empty). A device name is
// only sent with FLAG_CONV.
export function encodeHello(user, flags, password, device = '') {
  const pw = password || new Uint8Array(0);
  if (pw.length > PASSWORD_MAX) throw new ProtoError(`password over ${PASSWORD_MAX} bytes`);
  if (!isDeviceName(device)) throw new ProtoError(`bad device name ${JSON.stringify(device)}`);
  const conv = (flags & FLAG_CONV) !== 0;
  if (device && !conv) throw new ProtoError('a device name needs the CONV flag');
  const name = conv ? new Uint8Array([device.length, ...new TextEncoder().encode(device)]) : new Uint8Array(0);
  const body = new Uint8Array(2 + name.length + pw.length);
  body[0] = VERSION;
  body[1] = flags;
  body.set(name, 2);
  body.set(pw, 2 + name.length);
  return encodeFrame(user, 0, HELLO, body);
}

// The header (13 bytes) and the POST fields (10 bytes) of a POST whose
// payload is `len` bytes: kind 1-4, flags 0, cid a BigInt 0..2^64-1
// (0 = none). The payload follows them.
export function postHeader(sender, receiver, kind, cid, len) {
  if (!isData(kind)) throw new ProtoError(`POST of kind ${kind}`);
  if (typeof cid !== 'bigint' || cid < 0n || cid > U64_MAX) throw new ProtoError(`bad cid ${cid}`);
  const h = new Uint8Array(C2S_HDR + POST_HDR);
  h.set(c2sHeader(sender, receiver, POST, POST_HDR + len), 0);
  const v = new DataView(h.buffer);
  v.setUint8(C2S_HDR, kind);
  v.setUint8(C2S_HDR + 1, 0);
  v.setBigUint64(C2S_HDR + 2, cid);
  return h;
}

// A whole POST (header, fields, payload) in one new array.
export function encodePost(sender, receiver, kind, cid, payload) {
  return joinFrame(postHeader(sender, receiver, kind, cid, payload.length), payload);
}

// ACK: the count of data frames received on this connection, u64.
export function encodeAck(user, count) {
  const body = new Uint8Array(8);
  new DataView(body.buffer).setBigUint64(0, BigInt(count));
  return encodeFrame(user, 0, ACK, body);
}

export function encodePong(user, pingBody) {
  return encodeFrame(user, 0, PONG, pingBody);
}

// One server->client frame from one WebSocket message (ArrayBuffer).
// Returns {sender, type, body: Uint8Array (a view, not a copy)}; throws
// ProtoError when the message is not exactly one frame.
export function decodeS2C(buf) {
  if (buf.byteLength < S2C_HDR) throw new ProtoError('message shorter than a frame header');
  const v = new DataView(buf);
  const len = v.getUint32(5);
  if (S2C_HDR + len !== buf.byteLength)
    throw new ProtoError(`frame of ${len} bytes in a message of ${buf.byteLength}`);
  return { sender: v.getUint32(0), type: v.getUint8(4), body: new Uint8Array(buf, S2C_HDR, len) };
}

function view(body) {
  return new DataView(body.buffer, body.byteOffset, body.byteLength);
}

// WELCOME: {version, flags, user, maxFrame}; throws on a malformed body.
export function parseWelcome(body) {
  if (body.length !== 10) throw new ProtoError(`WELCOME of ${body.length} bytes, not 10`);
  const v = view(body);
  return { version: v.getUint8(0), flags: v.getUint8(1), user: v.getUint32(2), maxFrame: v.getUint32(6) };
}

// ACK: the count as a Number (exact below 2^53, far beyond any connection).
export function parseAck(body) {
  if (body.length !== 8) throw new ProtoError(`ACK of ${body.length} bytes, not 8`);
  return Number(view(body).getBigUint64(0));
}

// ERROR: {code, name, ref, reason}; invalid UTF-8 in the reason is replaced.
export function parseError(body) {
  if (body.length < 10) throw new ProtoError(`ERROR of ${body.length} bytes, under 10`);
  const v = view(body);
  const code = v.getUint16(0);
  return {
    code,
    name: ERROR_NAMES[code] || `code ${code}`,
    ref: Number(v.getBigUint64(2)),
    reason: new TextDecoder().decode(body.subarray(10)),
  };
}

// MSG: {id: BigInt, kind, own, to, time (unix ms), payload (a view)};
// throws on a body under 22 bytes, a kind outside 1-4 or `to` 0. Flag bits
// other than OWN are ignored (reserved: a later flag must not break this
// client).
export function parseMsg(body) {
  if (body.length < MSG_HDR) throw new ProtoError(`MSG of ${body.length} bytes, under ${MSG_HDR}`);
  const v = view(body);
  const kind = v.getUint8(8);
  if (!isData(kind)) throw new ProtoError(`MSG of kind ${kind}`);
  const to = v.getUint32(10);
  if (!isUserId(to)) throw new ProtoError('MSG to user 0');
  return {
    id: v.getBigUint64(0),
    kind,
    own: (v.getUint8(9) & MSG_OWN) !== 0,
    to,
    time: Number(v.getBigUint64(14)),
    payload: body.subarray(MSG_HDR),
  };
}
