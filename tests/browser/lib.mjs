// lib.mjs -- what the browser tests share: the server (started here, or
// one already running), Debian's Chromium through playwright-core, the chat
// page driven like a person would, chat-client, screenshots.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '..', '..');
export const SERVER = process.env.CHAT_SERVER || join(ROOT, 'build', 'chat-server');
export const CLIENT = process.env.CHAT_CLIENT || join(ROOT, 'build', 'chat-client');
export const SHOTS = resolve(process.env.CHAT_SCREENSHOTS || join(ROOT, 'build', 'browser'));
export const WAIT_MS = 20000; // bound of every awaited condition (a hung test fails, it never waits forever)

const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

const LOG_KEEP = 256 << 10; // bytes of a child's stderr kept for error messages

// Keep a child for the exit handler, and read its stderr all along (a full
// pipe would block it) into child.log, its first LOG_KEEP bytes.
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.log = '';
  if (child.stderr) {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      if (child.log.length < LOG_KEEP) child.log += d;
    });
  }
  return child;
}

// Resolve with the first match of `re` in a child's stderr so far or to come.
function waitForLine(child, re, what) {
  return new Promise((resolveP, reject) => {
    const done = (err, m) => {
      clearTimeout(timer);
      child.stderr.off('data', check);
      child.off('exit', exited);
      if (err) reject(err);
      else resolveP(m);
    };
    const check = () => {
      const m = child.log.match(re);
      if (m) done(null, m);
    };
    const exited = (code) => done(new Error(`${what} exited (${code}) before printing ${re}:\n${child.log}`));
    const timer = setTimeout(() => done(new Error(`${what}: no line matching ${re} within ${WAIT_MS} ms:\n${child.log}`)), WAIT_MS);
    child.stderr.on('data', check);
    child.once('exit', exited);
    check();
  });
}

// A chat-server of our own: {tcpPort, webUrl, stop(), args}. extra: more
// flags; ports: {tcp, http} to reuse (a restart), else free ones; dataDir
// to reuse. With CHAT_DEVBRIDGE=1 the server serves no HTTP itself and
// tests/browser/devbridge.py stands in for its HTTP listener.
export async function startServer({ extra = [], ports = null, dataDir = null } = {}) {
  const dir = dataDir || mkdtempSync(join(tmpdir(), 'chat-browser-'));
  const bridge = process.env.CHAT_DEVBRIDGE === '1';
  const args = ['--bind', '127.0.0.1', '--port', String(ports ? ports.tcp : 0), '--data-dir', dir, ...extra];
  if (!bridge) args.push('--http-port', ports ? String(ports.http) : 'auto');
  const server = track(spawn(SERVER, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  let tcp, http, helper = null;
  try {
    tcp = await waitForLine(server, /listening on 127\.0\.0\.1:(\d+) \((?!http)/, 'chat-server');
    if (bridge) {
      helper = track(spawn('/usr/bin/python3', [join(here, 'devbridge.py'), '--tcp-port', tcp[1],
        '--http-port', String(ports ? ports.http : 0)], { stdio: ['ignore', 'ignore', 'pipe'] }));
      http = await waitForLine(helper, /listening on 127\.0\.0\.1:(\d+) \(http/, 'devbridge');
    } else {
      http = await waitForLine(server, /listening on 127\.0\.0\.1:(\d+) \(http/, 'chat-server');
    }
  } catch (e) {
    for (const c of [server, helper]) if (c) c.kill('SIGKILL');
    throw e;
  }
  const stop = async (signal = 'SIGTERM') => {
    for (const c of [helper, server]) {
      if (!c || c.exitCode !== null || c.signalCode) continue;
      c.kill(signal);
      await once(c, 'exit');
    }
  };
  return {
    tcpPort: Number(tcp[1]),
    httpPort: Number(http[1]),
    webUrl: `http://127.0.0.1:${http[1]}/`,
    dataDir: dir,
    stop,
    cleanup: async () => {
      await stop();
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The server under test: CHAT_WEB_URL + CHAT_TCP_PORT when set (one already
// running), else one started here.
export async function mainServer(extra) {
  if (process.env.CHAT_WEB_URL) {
    if (!process.env.CHAT_TCP_PORT) throw new Error('CHAT_WEB_URL needs CHAT_TCP_PORT (the same server\'s chat TCP port)');
    const u = process.env.CHAT_WEB_URL.replace(/\/?$/, '/');
    return { tcpPort: Number(process.env.CHAT_TCP_PORT), webUrl: u, external: true, stop: async () => {}, cleanup: async () => {} };
  }
  return startServer({ extra });
}

// Debian's Chromium, never a downloaded one. playwright-core gives every
// launch a fresh user-data directory of its own (and removes it on close).
export function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A page of a fresh context (its own storage: one person's browser, one
// device). opts: the context's options, and `tap` (tapChat's) to put the
// test between its pages and the server.
export async function newPerson(browser, server, { tap = null, ...opts } = {}) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 }, ...opts });
  context.setDefaultTimeout(WAIT_MS);
  if (tap) await tapChat(context, tap);
  const page = await context.newPage();
  watchPage(page);
  await page.goto(server.webUrl);
  return { context, page };
}

// A person logged in as user, with the conversation with peer open (when
// given): {context, page}.
export async function loggedIn(browser, server, user, peer = 0, opts = {}) {
  const p = await newPerson(browser, server, opts);
  await login(p.page, user);
  if (peer) await openConv(p.page, peer);
  return p;
}

// The end of a test: no page made an error (but `allowed` ones), every
// person's browser closed.
export async function finish(persons, allowed = /^$/) {
  const errors = persons.flatMap((p) => p.context.chatErrors || []).filter((e) => !allowed.test(e));
  for (const p of persons) await p.context.close();
  assert.deepEqual(errors, [], 'errors in the pages');
}

// Errors of the pages of a context (uncaught exceptions, console errors,
// failed console.assert) are collected on the context, for finish().
export function watchPage(page) {
  const ctx = page.context();
  ctx.chatErrors = ctx.chatErrors || [];
  page.on('pageerror', (e) => ctx.chatErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'assert') ctx.chatErrors.push(m.text());
  });
}

// Every chat frame between the pages of a context and the server passes
// through tap({dir: 'up' (page -> server) | 'down', type, frame: Buffer,
// socket}) first; it returns false to drop the frame. socket.cut() ends
// that connection at once, both ways (the page sees it lost, as when a
// network breaks): nothing more passes on it, frames already on their way
// included. Playwright's WebSocket routing: the page's socket is played by
// Playwright, which opens the real one to the server.
export async function tapChat(context, tap) {
  await context.routeWebSocket(/\/ws$/, (page) => {
    const server = page.connectToServer();
    const socket = {
      open: true,
      async cut() {
        if (!socket.open) return;
        socket.open = false;
        await Promise.all([server.close({ code: 1000 }), page.close({ code: 4000, reason: 'cut by the test' })]);
      },
    };
    const pass = (dir, to, typeAt) => (m) => {
      if (!socket.open) return;
      if (typeof m !== 'string' && tap({ dir, type: m[typeAt], frame: m, socket }) === false) return;
      if (socket.open) to.send(m);
    };
    page.onMessage(pass('up', server, 8));
    server.onMessage(pass('down', page, 4));
  });
}

export async function login(page, user, password = '') {
  await page.fill('#login-user', String(user));
  await page.fill('#login-password', password);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#status[data-state=online]');
}

export async function openConv(page, peer) {
  await page.fill('#new-peer', String(peer));
  await page.press('#new-peer', 'Enter');
  await page.waitForSelector(`#conv-title:text-is("User ${peer}")`);
}

export async function sendText(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

// The text of a message (dir: in | out) that is exactly `text`.
export function msgText(page, dir, text) {
  const re = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return page.locator(`li.msg.${dir} .text`).filter({ hasText: re });
}

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

// Run chat-client to completion: {code, stdout, stderr}.
export async function runClient(args, { timeoutMs = WAIT_MS } = {}) {
  const child = track(spawn(CLIENT, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '', stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = await once(child, 'exit');
  clearTimeout(timer);
  return { code, stdout, stderr };
}

// Something that grows (a child's output, frames seen): wake() after each
// change; until(get, pred, what) resolves to get() once pred(get()) is true,
// or fails after WAIT_MS with `what` and describe().
export function watched(describe = () => '') {
  const waiters = new Set();
  return {
    wake() {
      for (const w of [...waiters]) w();
    },
    until(get, pred, what) {
      return new Promise((resolveP, reject) => {
        const check = () => {
          if (!pred(get())) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolveP(get());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${what} not seen within ${WAIT_MS} ms; got ${describe()}`));
        }, WAIT_MS);
        waiters.add(check);
        check();
      });
    },
  };
}

// A chat-client listener left running: lines() returns the JSON objects
// so far; waitFor(pred) resolves once pred(objects) is true.
export async function startListener(port, id, extra = []) {
  const child = track(spawn(CLIENT, ['listen', '--port', String(port), '--id', String(id), ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  const w = watched(() => out);
  const objects = () => out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    w.wake();
  });
  await waitForLine(child, /listening as/, 'chat-client listen');
  return {
    objects,
    waitFor: (pred, what) => w.until(objects, pred, `chat-client listen: ${what}`),
    async stop() {
      if (child.exitCode === null && !child.signalCode) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    },
  };
}

// A member of the chat that is neither a page nor chat-client: a raw TCP
// connection of user `user`, device `device`, HELLO with CONV (no ACKS: the
// server counts a message as this device's once written to it), and with
// `signals` SIGNALS too. The frames are written and read here byte by byte,
// from docs/PROTOCOL.md, so that the page's codec is checked against the
// server, not against itself.
// Returns {msgs(), events(), errors(), receipts(), post(to, text, {group}),
// read(conv, upto, {group}), typing(to, state, {group}), until(get, pred,
// what), close()}:
// msgs are {id, sender, own, group, to, text}, events (GROUPS op 8)
// {group, what, by, users, name}, errors {code, ref, reason}, receipts
// (RECEIPT, with SIGNALS) {what, group, conv, by, upto, time}.
export async function rawMember(port, user, device = 'raw', { signals = false } = {}) {
  const sock = tcpConnect({ host: '127.0.0.1', port });
  await once(sock, 'connect');
  const frames = [];
  const w = watched(() => JSON.stringify(frames.map((f) => [f.type, f.body.toString('hex').slice(0, 80)])));
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUInt32BE(5)) {
      const len = buf.readUInt32BE(5);
      frames.push({ sender: buf.readUInt32BE(0), type: buf[4], body: Buffer.from(buf.subarray(9, 9 + len)) });
      buf = buf.subarray(9 + len);
    }
    w.wake();
  });
  const send = (receiver, type, body) => {
    const h = Buffer.alloc(13);
    h.writeUInt32BE(user, 0);
    h.writeUInt32BE(receiver, 4);
    h[8] = type;
    h.writeUInt32BE(body.length, 9);
    sock.write(Buffer.concat([h, body]));
  };
  const name = Buffer.from(device, 'ascii');
  const flags = 0x02 | (signals ? 0x04 : 0); // CONV, SIGNALS
  send(0, 0x80, Buffer.concat([Buffer.from([1, flags, name.length]), name])); // HELLO: version 1
  const [welcome] = await w.until(() => frames.filter((f) => f.type === 0x81), (l) => l.length > 0, `WELCOME of user ${user}`);
  assert.equal(welcome.body[1] & flags, flags, `the server grants ${signals ? 'CONV and SIGNALS' : 'CONV'}`);
  const of = (type, decode) => () => frames.filter((f) => f.type === type).map(decode);
  let cid = BigInt(user) << 32n;
  return {
    msgs: of(0x86, (f) => ({ id: f.body.readBigUInt64BE(0), sender: f.sender, own: (f.body[9] & 1) === 1,
      group: (f.body[9] & 2) === 2, to: f.body.readUInt32BE(10), text: f.body.subarray(22).toString() })),
    events: () => of(0x89, (f) => groupEvent(f.body))().filter((e) => e !== null),
    errors: of(0x83, (f) => ({ code: f.body.readUInt16BE(0), ref: Number(f.body.readBigUInt64BE(2)), reason: f.body.subarray(10).toString() })),
    // A text POST (kind 1) with a new cid; flags GROUP when to is a group.
    post(to, text, { group = false } = {}) {
      const b = Buffer.alloc(10);
      b[0] = 1;
      b[1] = group ? 0x02 : 0;
      b.writeBigUInt64BE(++cid, 2);
      send(to, 0x87, Buffer.concat([b, Buffer.from(text)]));
    },
    receipts: of(0x8c, (f) => ({ what: f.body[0], group: (f.body[1] & 2) === 2, conv: f.body.readUInt32BE(2),
      by: f.body.readUInt32BE(6), upto: f.body.readBigUInt64BE(10), time: Number(f.body.readBigUInt64BE(18)) })),
    // RECEIPT READ (what 2): shown conv up to upto (by 0, time 0).
    read(conv, upto, { group = false } = {}) {
      const b = Buffer.alloc(26);
      b[0] = 2;
      b[1] = group ? 0x02 : 0;
      b.writeUInt32BE(conv, 2);
      b.writeBigUInt64BE(BigInt(upto), 10);
      send(0, 0x8c, b);
    },
    // TYPING: state 1 typing, 0 stopped.
    typing(to, state, { group = false } = {}) {
      const b = Buffer.alloc(6);
      b[0] = group ? 0x02 : 0;
      b.writeUInt32BE(to, 1);
      b[5] = state;
      send(0, 0x8d, b);
    },
    until: (get, pred, what) => w.until(get, pred, `raw member ${user}: ${what}`),
    close() {
      sock.destroy();
    },
  };
}

// A GROUPS event's fields (op 8), read byte by byte: {group, what, by,
// users, name}; null when the body is another op.
export function groupEvent(b) {
  if (b[0] !== 8) return null;
  const n = b.readUInt16BE(14);
  const users = Array.from({ length: n }, (_, i) => b.readUInt32BE(16 + 4 * i));
  const at = 16 + 4 * n;
  return { group: b.readUInt32BE(5), what: b[9], by: b.readUInt32BE(10), users, name: b.subarray(at + 1, at + 1 + b[at]).toString() };
}

// A valid PNG of w x h RGB pixels, pixel(x, y) -> [r, g, b], made here.
export function makePng(w, h, pixel) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const x of buf) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) raw.set(pixel(x, y), y * (w * 3 + 1) + 1 + x * 3);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// A WAV file (PCM, 8 kHz, mono, 16 bit) of a 440 Hz tone, ms long.
export function makeWav(ms) {
  const rate = 8000, n = Math.round((rate * ms) / 1000);
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(36 + 2 * n, 4);
  b.write('WAVEfmt ', 8, 'ascii');
  b.writeUInt32LE(16, 16); // fmt chunk size
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28); // bytes per second
  b.writeUInt16LE(2, 32); // block align
  b.writeUInt16LE(16, 34); // bits per sample
  b.write('data', 36, 'ascii');
  b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + 2 * i);
  return b;
}
