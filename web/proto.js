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

export const VERSION = 1;
export const FLAG_ACKS = 1;
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

// A whole client->server frame (header + body) in one new array.
export function encodeFrame(sender, receiver, type, body) {
  const f = new Uint8Array(C2S_HDR + body.length);
  f.set(c2sHeader(sender, receiver, type, body.length), 0);
  f.set(body, C2S_HDR);
  return f;
}

// HELLO: version, flags, then the password bytes (may be empty).
export function encodeHello(user, flags, password) {
  const pw = password || new Uint8Array(0);
  if (pw.length > PASSWORD_MAX) throw new ProtoError(`password over ${PASSWORD_MAX} bytes`);
  const body = new Uint8Array(2 + pw.length);
  body[0] = VERSION;
  body[1] = flags;
  body.set(pw, 2);
  return encodeFrame(user, 0, HELLO, body);
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
