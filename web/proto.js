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
export const GROUP = 0x88; // c->s with CONV: a group operation
export const GROUPS = 0x89; // s->c with CONV: its answer, or a group event
export const HISTORY = 0x8a; // c->s with CONV: a page of a conversation's history
export const HISTORY_PAGE = 0x8b; // s->c with CONV: the page
export const RECEIPT = 0x8c; // both with SIGNALS: delivered and read marks
export const TYPING = 0x8d; // both with SIGNALS: someone is typing
export const PRESENCE = 0x8e; // c->s with SIGNALS: (un)subscribe; s->c: a user's state
export const POSTED = 0x8f; // s->c with SIGNALS: the server id a POST of this connection got

export const VERSION = 1;
export const FLAG_ACKS = 1; // HELLO/WELCOME: acknowledgements
export const FLAG_CONV = 2; // HELLO/WELCOME: devices and conversations (MSG, POST)
export const FLAG_SIGNALS = 4; // HELLO/WELCOME: receipts, typing, presence (with CONV only)
export const MSG_OWN = 1; // MSG flags: the author is this user, on another device
export const MSG_GROUP = 2; // MSG, POST and history flags: `to` (receiver) is a group
export const MSG_HDR = 22; // MSG body before the payload: id u64, kind u8, flags u8, to u32, time u64
export const POST_HDR = 10; // POST body before the payload: kind u8, flags u8, cid u64
export const DEVICE_MAX = 32; // bytes of a device name
const U64_MAX = (1n << 64n) - 1n;
export const PASSWORD_MAX = 1024; // bytes of UTF-8 in a HELLO
export const PING_MAX = 64; // bytes of a PING body
export const USER_MAX = 0xffffffff;
export const GROUP_NAME_MAX = 64; // bytes of UTF-8 in a group's name
export const HISTORY_LIMIT_MAX = 200; // messages a HISTORY may ask for

// GROUP ops (and GROUPS answers: the same numbers, or G_EVENT); events.
export const G_CREATE = 1;
export const G_RENAME = 2;
export const G_ADD = 3;
export const G_REMOVE = 4;
export const G_LEAVE = 5;
export const G_LIST = 6;
export const G_MEMBERS = 7;
export const G_EVENT = 8;
export const EV_CREATED = 1;
export const EV_RENAMED = 2;
export const EV_ADDED = 3;
export const EV_REMOVED = 4;
export const EV_LEFT = 5;
export const H_USER = 1; // HISTORY kind: the conversation with a user
export const H_GROUP = 2; // HISTORY kind: a group's
const GROUP_PRE = 9; // GROUP and GROUPS: op u8, req u32, group u32

// RECEIPT what; TYPING states; PRESENCE ops; sizes.
export const R_DELIVERED = 1; // s->c: user `by` has the messages up to `upto`
export const R_READ = 2; // both: shown up to `upto`
export const R_QUERY = 3; // c->s: send me the marks of a conversation
export const R_END = 4; // s->c: the end of a QUERY's answer
export const RECEIPT_SIZE = 26; // what u8, flags u8, conv u32, by u32, upto u64, time u64
export const TYPING_SIZE = 6; // flags u8, to u32, state u8
export const PRES_SUBSCRIBE = 1;
export const PRES_UNSUBSCRIBE = 2;
export const PRESENCE_USERS_MAX = 256; // user ids in one PRESENCE request
export const PRESENCE_SIZE = 13; // s->c: user u32, state u8, last seen u64
export const POSTED_SIZE = 16; // cid u64, id u64

// ERROR codes by number, as docs/PROTOCOL.md names them.
export const ERROR_NAMES = Object.freeze({
  1: 'TOOBIG', 2: 'BADTYPE', 3: 'SPOOF', 4: 'PROTO', 5: 'AUTH', 6: 'NOLOGIN',
  7: 'QUOTA', 8: 'STORE', 9: 'RATE', 10: 'BUSY', 11: 'SHUTDOWN', 12: 'BADRCPT',
  13: 'SLOW', 14: 'GROUP', 15: 'DENIED',
});
export const ERR_TOOBIG = 1;
export const ERR_BADTYPE = 2;
export const ERR_PROTO = 4;
export const ERR_AUTH = 5;
export const ERR_NOLOGIN = 6;
export const ERR_STORE = 8;
export const ERR_GROUP = 14;
export const ERR_DENIED = 15;

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
// payload is `len` bytes: kind 1-4, cid a BigInt 0..2^64-1 (0 = none),
// flags 0 or MSG_GROUP (then `receiver` is a group). The payload follows
// them.
export function postHeader(sender, receiver, kind, cid, len, flags = 0) {
  if (!isData(kind)) throw new ProtoError(`POST of kind ${kind}`);
  if (typeof cid !== 'bigint' || cid < 0n || cid > U64_MAX) throw new ProtoError(`bad cid ${cid}`);
  if (flags !== 0 && flags !== MSG_GROUP) throw new ProtoError(`POST flags ${flags}`);
  const h = new Uint8Array(C2S_HDR + POST_HDR);
  h.set(c2sHeader(sender, receiver, POST, POST_HDR + len), 0);
  const v = new DataView(h.buffer);
  v.setUint8(C2S_HDR, kind);
  v.setUint8(C2S_HDR + 1, flags);
  v.setBigUint64(C2S_HDR + 2, cid);
  return h;
}

// A whole POST (header, fields, payload) in one new array.
export function encodePost(sender, receiver, kind, cid, payload, flags = 0) {
  return joinFrame(postHeader(sender, receiver, kind, cid, payload.length, flags), payload);
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

// MSG: {id: BigInt, kind, own, group, to, time (unix ms), payload (a
// view)}; throws on a body under 22 bytes, a kind outside 1-4 or `to` 0.
// `to` is a group's id when `group`. Flag bits other than OWN and GROUP
// are ignored (reserved: a later flag must not break this client).
export function parseMsg(body) {
  if (body.length < MSG_HDR) throw new ProtoError(`MSG of ${body.length} bytes, under ${MSG_HDR}`);
  const v = view(body);
  const kind = v.getUint8(8);
  if (!isData(kind)) throw new ProtoError(`MSG of kind ${kind}`);
  const to = v.getUint32(10);
  if (!isUserId(to)) throw new ProtoError('MSG to user 0');
  const flags = v.getUint8(9);
  return {
    id: v.getBigUint64(0),
    kind,
    own: (flags & MSG_OWN) !== 0,
    group: (flags & MSG_GROUP) !== 0,
    to,
    time: Number(v.getBigUint64(14)),
    payload: body.subarray(MSG_HDR),
  };
}

// ------------------------------------------------------ groups and history

// A group's name as bytes: 1 to 64 bytes of UTF-8, else ProtoError.
export function groupName(name) {
  const b = new TextEncoder().encode(typeof name === 'string' ? name : '');
  if (b.length < 1 || b.length > GROUP_NAME_MAX)
    throw new ProtoError(`a group name is 1 to ${GROUP_NAME_MAX} bytes of UTF-8, not ${b.length}`);
  return b;
}

function isReq(req) {
  return Number.isInteger(req) && req >= 0 && req <= USER_MAX;
}

// GROUP: op (G_CREATE .. G_MEMBERS), req (u32, echoed in the answer),
// group (0 for CREATE and LIST), and the op's arguments: `name` (CREATE,
// RENAME), `users` (CREATE, ADD, REMOVE: user ids). Throws ProtoError on
// anything the server would call malformed or refuse for its form.
export function encodeGroup(user, op, req, group, { name = '', users = [] } = {}) {
  if (!Number.isInteger(op) || op < G_CREATE || op > G_MEMBERS) throw new ProtoError(`GROUP op ${op}`);
  if (!isReq(req)) throw new ProtoError(`bad request number ${req}`);
  const none = op === G_CREATE || op === G_LIST;
  if (none ? group !== 0 : !isUserId(group)) throw new ProtoError(`GROUP op ${op} for group ${group}`);
  const named = op === G_CREATE || op === G_RENAME;
  const listed = op === G_CREATE || op === G_ADD || op === G_REMOVE;
  const nb = named ? groupName(name) : new Uint8Array(0);
  if (listed && (users.length > 0xffff || !users.every(isUserId)))
    throw new ProtoError('users must be at most 65535 user ids');
  if ((op === G_ADD || op === G_REMOVE) && users.length === 0) throw new ProtoError('no user to add or remove');
  const body = new Uint8Array(GROUP_PRE + (named ? 1 + nb.length : 0) + (listed ? 2 + 4 * users.length : 0));
  const v = view(body);
  v.setUint8(0, op);
  v.setUint32(1, req);
  v.setUint32(5, group);
  let at = GROUP_PRE;
  if (named) {
    v.setUint8(at, nb.length);
    body.set(nb, at + 1);
    at += 1 + nb.length;
  }
  if (listed) {
    v.setUint16(at, users.length);
    at += 2;
    for (const u of users) {
      v.setUint32(at, u);
      at += 4;
    }
  }
  return encodeFrame(user, 0, GROUP, body);
}

// A reader over a body that throws ProtoError (naming `what`) past its end.
function reader(body, what) {
  const v = view(body);
  let at = 0;
  const need = (n) => {
    if (at + n > body.length) throw new ProtoError(`${what} ends inside a field (${body.length} bytes)`);
    const p = at;
    at += n;
    return p;
  };
  return {
    u8: () => v.getUint8(need(1)),
    u16: () => v.getUint16(need(2)),
    u32: () => v.getUint32(need(4)),
    u64: () => v.getBigUint64(need(8)),
    bytes: (n) => body.subarray(need(n), at),
    end() {
      if (at !== body.length) throw new ProtoError(`${what} has ${body.length - at} bytes after its fields`);
    },
  };
}

const fromUtf8 = new TextDecoder(); // invalid UTF-8 becomes U+FFFD

// GROUPS: {op, req, group} and, by op: LIST {groups: [{id, admin, members,
// name}]}, MEMBERS {members: [{user, admin}]}, EVENT {what (EV_*), by,
// users, name}; nothing more for the others. Throws ProtoError on a
// malformed body (unknown op, a field past the end, bytes after them).
export function parseGroups(body) {
  const r = reader(body, 'GROUPS');
  const out = { op: r.u8(), req: r.u32(), group: r.u32() };
  const adminOf = (f) => (f & 1) === 1;
  if (out.op < G_CREATE || out.op > G_EVENT) throw new ProtoError(`GROUPS op ${out.op}`);
  if (out.op === G_LIST) {
    out.groups = [];
    for (let n = r.u16(); n > 0; n--) {
      const id = r.u32();
      const admin = adminOf(r.u8());
      const members = r.u16();
      out.groups.push({ id, admin, members, name: fromUtf8.decode(r.bytes(r.u8())) });
    }
  } else if (out.op === G_MEMBERS) {
    out.members = [];
    for (let n = r.u16(); n > 0; n--) out.members.push({ user: r.u32(), admin: adminOf(r.u8()) });
  } else if (out.op === G_EVENT) {
    out.what = r.u8();
    if (out.what < EV_CREATED || out.what > EV_LEFT) throw new ProtoError(`GROUPS event ${out.what}`);
    out.by = r.u32();
    out.users = [];
    for (let n = r.u16(); n > 0; n--) out.users.push(r.u32());
    out.name = fromUtf8.decode(r.bytes(r.u8()));
  }
  r.end();
  if (out.op !== G_LIST && !isUserId(out.group)) throw new ProtoError(`GROUPS op ${out.op} for group 0`);
  return out;
}

// HISTORY: req (u32), kind (H_USER with a user's id, H_GROUP with a
// group's), before (BigInt: only ids below it; 0n = from the newest),
// limit 1-200. Throws ProtoError on what the server would call malformed.
export function encodeHistory(user, req, kind, peer, before, limit) {
  if (!isReq(req)) throw new ProtoError(`bad request number ${req}`);
  if (kind !== H_USER && kind !== H_GROUP) throw new ProtoError(`HISTORY of kind ${kind}`);
  if (!isUserId(peer)) throw new ProtoError(`HISTORY of peer ${peer}`);
  if (typeof before !== 'bigint' || before < 0n || before > U64_MAX) throw new ProtoError(`bad before ${before}`);
  if (!Number.isInteger(limit) || limit < 1 || limit > HISTORY_LIMIT_MAX)
    throw new ProtoError(`HISTORY limit ${limit}, not 1-${HISTORY_LIMIT_MAX}`);
  const body = new Uint8Array(19);
  const v = view(body);
  v.setUint32(0, req);
  v.setUint8(4, kind);
  v.setUint32(5, peer);
  v.setBigUint64(9, before);
  v.setUint16(17, limit);
  return encodeFrame(user, 0, HISTORY, body);
}

// A history page: {req, more, entries: [{id: BigInt, sender, kind, own,
// group, to, time, payload (a view)}]}, newest first. Throws ProtoError on
// a malformed page: a field past the end, bytes after the entries, a kind
// outside 1-4, user 0, ids not decreasing.
export function parseHistoryPage(body) {
  const r = reader(body, 'HISTORY page');
  const out = { req: r.u32(), more: r.u8() !== 0, entries: [] };
  let last = U64_MAX + 1n;
  for (let n = r.u16(); n > 0; n--) {
    const e = { id: r.u64(), sender: r.u32() };
    e.kind = r.u8();
    const flags = r.u8();
    Object.assign(e, { own: (flags & MSG_OWN) !== 0, group: (flags & MSG_GROUP) !== 0, to: r.u32(), time: Number(r.u64()) });
    e.payload = r.bytes(r.u32());
    if (!isData(e.kind)) throw new ProtoError(`history entry of kind ${e.kind}`);
    if (!isUserId(e.sender) || !isUserId(e.to)) throw new ProtoError('history entry from or to 0');
    if (e.id >= last) throw new ProtoError('history entries not newest first');
    last = e.id;
    out.entries.push(e);
  }
  r.end();
  return out;
}

// ------------------------------------------- receipts, typing and presence

// RECEIPT, client -> server: what R_READ ("shown up to `upto`", a BigInt
// message id) or R_QUERY (upto must be 0n); conv a user or, with `group`,
// a group; by and time 0. Throws ProtoError on what the server would call
// malformed (or a DELIVERED / END, which only the server sends).
export function encodeReceipt(user, what, conv, upto = 0n, group = false) {
  if (what !== R_READ && what !== R_QUERY) throw new ProtoError(`a client sends no RECEIPT ${what}`);
  if (!isUserId(conv)) throw new ProtoError(`RECEIPT of conversation ${conv}`);
  if (typeof upto !== 'bigint' || upto < 0n || upto > U64_MAX) throw new ProtoError(`bad upto ${upto}`);
  if (what === R_QUERY && upto !== 0n) throw new ProtoError('a QUERY has upto 0');
  const body = new Uint8Array(RECEIPT_SIZE);
  const v = view(body);
  v.setUint8(0, what);
  v.setUint8(1, group ? MSG_GROUP : 0);
  v.setUint32(2, conv);
  v.setUint32(6, 0);
  v.setBigUint64(10, upto);
  v.setBigUint64(18, 0n);
  return encodeFrame(user, 0, RECEIPT, body);
}

// RECEIPT, server -> client: {what (R_DELIVERED, R_READ or R_END), group,
// conv, by, upto: BigInt, time (unix ms, 0 = not known)}. Throws
// ProtoError on another size, a `what` the server does not send, conv 0,
// or by 0 in a mark. Flag bits other than GROUP are ignored (reserved).
export function parseReceipt(body) {
  if (body.length !== RECEIPT_SIZE) throw new ProtoError(`RECEIPT of ${body.length} bytes, not ${RECEIPT_SIZE}`);
  const v = view(body);
  const what = v.getUint8(0);
  if (what !== R_DELIVERED && what !== R_READ && what !== R_END) throw new ProtoError(`RECEIPT ${what} from the server`);
  const out = {
    what,
    group: (v.getUint8(1) & MSG_GROUP) !== 0,
    conv: v.getUint32(2),
    by: v.getUint32(6),
    upto: v.getBigUint64(10),
    time: Number(v.getBigUint64(18)),
  };
  if (!isUserId(out.conv)) throw new ProtoError('RECEIPT of conversation 0');
  if (what !== R_END && !isUserId(out.by)) throw new ProtoError('RECEIPT mark by user 0');
  return out;
}

// TYPING, client -> server: to a user or, with `group`, a group; state 1
// typing, 0 stopped.
export function encodeTyping(user, to, state, group = false) {
  if (!isUserId(to)) throw new ProtoError(`TYPING to ${to}`);
  if (state !== 0 && state !== 1) throw new ProtoError(`TYPING state ${state}`);
  const body = new Uint8Array(TYPING_SIZE);
  const v = view(body);
  v.setUint8(0, group ? MSG_GROUP : 0);
  v.setUint32(1, to);
  v.setUint8(5, state);
  return encodeFrame(user, 0, TYPING, body);
}

// TYPING, server -> client (the typist is the header's sender): {group,
// to (this user, or the group), typing: bool}. Throws ProtoError on
// another size, to 0, a state over 1; reserved flag bits are ignored.
export function parseTyping(body) {
  if (body.length !== TYPING_SIZE) throw new ProtoError(`TYPING of ${body.length} bytes, not ${TYPING_SIZE}`);
  const v = view(body);
  const state = v.getUint8(5);
  const to = v.getUint32(1);
  if (state > 1) throw new ProtoError(`TYPING state ${state}`);
  if (!isUserId(to)) throw new ProtoError('TYPING to 0');
  return { group: (v.getUint8(0) & MSG_GROUP) !== 0, to, typing: state === 1 };
}

// PRESENCE, client -> server: op PRES_SUBSCRIBE or PRES_UNSUBSCRIBE, 1 to
// 256 user ids (none 0).
export function encodePresence(user, op, users) {
  if (op !== PRES_SUBSCRIBE && op !== PRES_UNSUBSCRIBE) throw new ProtoError(`PRESENCE op ${op}`);
  if (!Array.isArray(users) || users.length < 1 || users.length > PRESENCE_USERS_MAX || !users.every(isUserId))
    throw new ProtoError(`PRESENCE of 1 to ${PRESENCE_USERS_MAX} user ids`);
  const body = new Uint8Array(3 + 4 * users.length);
  const v = view(body);
  v.setUint8(0, op);
  v.setUint16(1, users.length);
  users.forEach((u, i) => v.setUint32(3 + 4 * i, u));
  return encodeFrame(user, 0, PRESENCE, body);
}

// PRESENCE, server -> client: {user, online: bool, lastSeen (unix ms when
// its last connection ended, 0 = not known)}. Throws ProtoError on another
// size, user 0 or a state over 1.
export function parsePresence(body) {
  if (body.length !== PRESENCE_SIZE) throw new ProtoError(`PRESENCE of ${body.length} bytes, not ${PRESENCE_SIZE}`);
  const v = view(body);
  const user = v.getUint32(0);
  const state = v.getUint8(4);
  if (!isUserId(user)) throw new ProtoError('PRESENCE of user 0');
  if (state > 1) throw new ProtoError(`PRESENCE state ${state}`);
  return { user, online: state === 1, lastSeen: Number(v.getBigUint64(5)) };
}

// POSTED, server -> client: {cid, id} (BigInts): the POST of this
// connection with client id `cid` got server id `id`. Throws ProtoError on
// another size or cid 0 (a POST without a cid gets no POSTED).
export function parsePosted(body) {
  if (body.length !== POSTED_SIZE) throw new ProtoError(`POSTED of ${body.length} bytes, not ${POSTED_SIZE}`);
  const v = view(body);
  const cid = v.getBigUint64(0);
  if (cid === 0n) throw new ProtoError('POSTED of cid 0');
  return { cid, id: v.getBigUint64(8) };
}
