// run.mjs -- browser tests of the web client (web/) in Debian's Chromium,
// against a real chat-server: `node run.mjs` (see README.md). Every wait is
// for a condition, bounded by L.WAIT_MS; any failure exits non-zero.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as L from './lib.mjs';
import './unit.mjs'; // the session's protocol edges, in Node, first

let server, browser;
// User ids of this run: a fresh block, so that a long-running server's
// stored messages from earlier runs never reach these tests.
let nextId = 1000 * randomInt(1, 4000000);
const ids = (n) => Array.from({ length: n }, () => ++nextId);

const ownServerOnly = process.env.CHAT_WEB_URL ? 'needs a server of its own (CHAT_WEB_URL is set)' : false;
const saveDir = mkdtempSync(join(tmpdir(), 'chat-browser-files-'));
const SENT = 'li.msg.out[data-status="sent"]';
const countIs = (page, selector, n) =>
  page.waitForFunction(([s, k]) => document.querySelectorAll(s).length === k, [selector, n]);
const badge = (peer, n) => `#conv-list [data-peer="${peer}"] .badge:text-is("${n}")`;

// A PNG of about 340 KB that does not compress (xorshift32 noise).
function noisyPng(seed) {
  let v = seed;
  const next = () => ((v ^= v << 13), (v ^= v >>> 17), (v ^= v << 5), v & 255);
  return L.makePng(380, 300, () => [next(), next(), next()]);
}

// Slow the page's uplink (Chromium's own throttling, WebSocket included),
// -1 = no limit.
const uplink = (cdp, bytesPerS) => cdp.send('Network.emulateNetworkConditions',
  { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerS });

before(async () => {
  // 1 MiB per message, as the WebSocket listener's default.
  server = await L.mainServer(['--max-frame', '1M']);
  browser = await L.launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.cleanup();
  rmSync(saveDir, { recursive: true, force: true });
});

test('two pages log in and chat both ways', async () => {
  const [a, b] = ids(2);
  const A = await L.loggedIn(browser, server, a);
  const B = await L.loggedIn(browser, server, b);
  await L.shot(A.page, '01-logged-in');
  await L.openConv(A.page, b);
  const hello = 'Hello, 你好, привет, שלום, नमस्ते 👋🏽';
  await L.sendText(A.page, hello);
  // B has no conversation open: the new one is listed with one unread.
  await B.page.waitForSelector(badge(a, 1));
  await L.shot(B.page, '02-unread');
  await B.page.click(`#conv-list [data-peer="${a}"]`);
  await L.msgText(B.page, 'in', hello).waitFor();
  // Read once opened (the badge goes when the page has marked it read).
  await B.page.locator(`#conv-list [data-peer="${a}"] .badge`).waitFor({ state: 'detached' });
  // A's message carries the mark once the server acknowledged it (✓; with
  // receipts ✓ delivered, ✓✓ once B has shown it).
  await A.page.waitForSelector(`${SENT} .mark:text-matches("^✓✓?$")`);

  // A is typing when B's answer arrives: it is shown, the draft stays.
  await A.page.fill('#text', 'half-typed draft');
  const answer = 'Привет! 🎉 مرحبا';
  await L.sendText(B.page, answer);
  await L.msgText(A.page, 'in', answer).waitFor();
  assert.equal(await A.page.inputValue('#text'), 'half-typed draft');
  await B.page.waitForSelector(SENT);
  await L.shot(A.page, '03-chat-a');
  await L.shot(B.page, '03-chat-b');

  // A second tab of A's browser cannot log in as A too.
  const tab = await A.context.newPage();
  L.watchPage(tab);
  await tab.goto(server.webUrl);
  await tab.fill('#login-user', String(a));
  await tab.click('#login-form button[type=submit]');
  await tab.waitForSelector('#login-error:has-text("logged in in another tab")');
  await L.finish([A, B]);
});

test('two tabs of one browser, two users, chat with each other', async () => {
  // What a new user tries first: one Chromium, two tabs, two ids.
  const [a, b] = ids(2);
  const A = await L.loggedIn(browser, server, a, b);
  const tab = await A.context.newPage();
  L.watchPage(tab);
  await tab.goto(server.webUrl); // (a new tab resumes no session: the form)
  await L.login(tab, b);
  await L.openConv(tab, a);
  await L.sendText(A.page, 'from the first tab');
  await L.msgText(tab, 'in', 'from the first tab').waitFor();
  await L.sendText(tab, 'and from the second');
  await L.msgText(A.page, 'in', 'and from the second').waitFor();
  await L.shot(tab, '01-two-tabs');
  await L.finish([A]);
});

test('a page and chat-client chat both ways', async () => {
  const [p, c] = ids(2);
  const P = await L.loggedIn(browser, server, p, c);
  const listener = await L.startListener(server.tcpPort, c, ['--save-dir', saveDir]);
  try {
    const toCli = 'from the browser: ÄÖÜ ß 日本語 🚀';
    await L.sendText(P.page, toCli);
    const got = await listener.waitFor((o) => o.some((m) => m.text === toCli), 'the page\'s text');
    // (From a CONV server the line also has "to" and "id": not compared.)
    const m = got.find((x) => x.text === toCli);
    assert.deepEqual({ from: m.from, type: m.type, text: m.text }, { from: p, type: 'text', text: toCli });
    if (m.to !== undefined) assert.equal(m.to, c);
  } finally {
    await listener.stop();
  }
  const fromCli = 'from chat-client: ελληνικά 🐧';
  const r = await L.runClient(['send', '--port', String(server.tcpPort), '--id', String(c), '--to', String(p), '--text', fromCli]);
  assert.equal(r.code, 0, `chat-client send: ${r.stderr}`);
  await L.msgText(P.page, 'in', fromCli).waitFor();
  await L.shot(P.page, '04-page-and-cli');
  await L.finish([P]);
});

test('a picture (dropped) and a voice message (file picker) play at the other page', async () => {
  const [a, b] = ids(2);
  const A = await L.loggedIn(browser, server, a, b);
  const B = await L.loggedIn(browser, server, b, a);
  await L.sendText(A.page, 'Here is the picture, and the tone 👇');
  await L.msgText(B.page, 'in', 'Here is the picture, and the tone 👇').waitFor();

  const png = L.makePng(160, 100, (x, y) => [x + 60, y + 100, 200 - x]);
  const drop = await A.page.evaluateHandle((b64) => {
    const dt = new DataTransfer();
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    dt.items.add(new File([bytes], 'gradient.png', { type: 'image/png' }));
    return dt;
  }, png.toString('base64'));
  await A.page.dispatchEvent('#conv', 'dragover', { dataTransfer: drop });
  await A.page.waitForSelector('#drop-hint:visible');
  await A.page.dispatchEvent('#conv', 'drop', { dataTransfer: drop });
  await A.page.waitForSelector('#drop-hint', { state: 'hidden' });

  const img = B.page.locator('li.msg.in[data-type="2"] img.picture');
  await img.waitFor();
  await B.page.waitForFunction(() => {
    const i = document.querySelector('li.msg.in[data-type="2"] img.picture');
    return i && i.complete && i.naturalWidth > 0;
  });
  assert.deepEqual(await img.evaluate((i) => [i.naturalWidth, i.naturalHeight]), [160, 100]);
  await A.page.waitForSelector('li.msg.out[data-type="2"][data-status="sent"]');

  await A.page.setInputFiles('#file-input', { name: 'tone.wav', mimeType: 'audio/wav', buffer: L.makeWav(2000) });
  await B.page.waitForFunction(() => {
    const au = document.querySelector('li.msg.in[data-type="3"] audio[controls]');
    return au && au.readyState >= 1 && Math.abs(au.duration - 2) < 0.05;
  });
  await A.page.waitForSelector('li.msg.out[data-type="3"][data-status="sent"]');
  const reply = 'Nice colours! 🎨 Très joli, 很漂亮 🎵';
  await L.sendText(B.page, reply);
  await L.msgText(A.page, 'in', reply).waitFor();
  await A.page.waitForFunction(() => document.querySelector('li.msg.out audio').readyState >= 1);
  await L.shot(A.page, '05-media-sender');
  await L.shot(B.page, '05-media-receiver');
  await L.finish([A, B]);
});

test('a message sent while the page was closed appears after it logs in again', async () => {
  const [a, b] = ids(2);
  const A = await L.loggedIn(browser, server, a, b);
  const B = await L.loggedIn(browser, server, b);
  await L.sendText(A.page, 'before you left');
  await B.page.waitForSelector(badge(a, 1));
  await B.page.close();

  await L.sendText(A.page, 'while you were away 🌙');
  await countIs(A.page, SENT, 2); // the server has it (stored)

  const page = await B.context.newPage(); // the same browser profile: history and user id kept
  L.watchPage(page);
  await page.goto(server.webUrl);
  assert.equal(await page.inputValue('#login-user'), String(b), 'the user id is remembered');
  await L.login(page, b);
  await page.waitForSelector(badge(a, 2));
  await L.shot(page, '06-offline-unread');
  await page.click(`#conv-list [data-peer="${a}"]`);
  await L.msgText(page, 'in', 'while you were away 🌙').waitFor();
  // The first from the page's own history, the second from the server's store.
  const texts = await page.locator('li.msg.in .text').allTextContents();
  assert.deepEqual(texts, ['before you left', 'while you were away 🌙']);
  await L.shot(page, '06-offline-delivered');
  await L.finish([A, B]);
});

test('a reload in the middle of sending: nothing half-sent, the rest resent in order, each once', async () => {
  const [a, c] = ids(2);
  const listener = await L.startListener(server.tcpPort, c, ['--save-dir', saveDir]);
  const A = await L.loggedIn(browser, server, a, c);
  try {
    const pics = [noisyPng(1), noisyPng(2)];
    assert.ok(pics.every((p) => p.length > 300000 && p.length < 1 << 20));
    // A slow uplink: the reload surely comes while frames are on their way.
    const cdp = await A.context.newCDPSession(A.page);
    await cdp.send('Network.enable');
    await uplink(cdp, 256 * 1024);
    const sent = [{ text: 'm1 before the pictures' }, { bytes: pics[0] }, { text: 'm2 between' }, { bytes: pics[1] }, { text: 'm3 last' }];
    for (const [i, s] of sent.entries()) {
      if (s.text) await L.sendText(A.page, s.text);
      else await A.page.setInputFiles('#file-input', { name: `pic${i}.png`, mimeType: 'image/png', buffer: s.bytes });
    }
    await countIs(A.page, 'li.msg.out', 5);
    await A.page.waitForSelector(SENT);
    // The upload bar of a picture on its way moved (bufferedAmount polled).
    await A.page.waitForFunction(() => [...document.querySelectorAll('li.msg.out progress')].some((p) => p.value > 0));
    const pendingBefore = await A.page.locator('li.msg.out[data-status="pending"]').count();
    assert.ok(pendingBefore >= 2, `reloading with ${pendingBefore} messages unacknowledged`);
    await L.shot(A.page, '07-before-reload');
    await A.page.reload();
    await uplink(cdp, -1);
    // The tab was logged in without a password: it resumes by itself, and
    // sends again the messages it kept as unacknowledged.
    await A.page.waitForSelector('#status[data-state=online]');
    await countIs(A.page, SENT, 5);
    await L.shot(A.page, '07-after-reload');

    const matches = (m, s) => (s.text !== undefined ? m.text === s.text
      : m.file !== undefined && readFileSync(m.file).equals(s.bytes));
    // A marker from the same user once the five are acknowledged: when it
    // is in, any copy of them would be in before it.
    const r = await L.runClient(['send', '--port', String(server.tcpPort), '--id', String(a), '--to', String(c), '--text', 'marker']);
    assert.equal(r.code, 0, `chat-client send: ${r.stderr}`);
    const got = await listener.waitFor((o) => o.some((m) => m.text === 'marker'), 'the marker after the five');
    // Whole or not at all (every message received is one that was sent), in
    // order, and each once: the page sends a message again with the cid it
    // stored with it, so the server recognises the resend of one it had
    // accepted before the reload but not yet acknowledged (CONV).
    assert.ok(got.every((m) => m.from === a));
    assert.deepEqual(got.slice(0, -1).map((m) => sent.findIndex((s) => matches(m, s))), [0, 1, 2, 3, 4],
      `received: ${JSON.stringify(got.map((m) => m.text || m.file))}`);
    console.log(`# reload: ${pendingBefore} of 5 unacknowledged at the reload`);
  } finally {
    await listener.stop();
  }
  await L.finish([A]);
});

test('phone width (360 px), keyboard only', async () => {
  const [a, b] = ids(2);
  const A = await L.newPerson(browser, server, { viewport: { width: 360, height: 740 } });
  const { page } = A;
  const focused = () => page.evaluate(() => document.activeElement.id);
  const noOverflow = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.equal(await focused(), 'login-user');
  await page.keyboard.type(String(a));
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'login-password');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#status[data-state=online]');
  assert.ok(await noOverflow(), 'no horizontal scrolling on the list');
  assert.equal(await focused(), 'new-peer');
  await page.keyboard.type(String(b));
  await page.keyboard.press('Enter');
  await page.waitForSelector('#conv:visible');
  // (the composer takes the focus once the conversation list is redrawn)
  await page.waitForFunction(() => document.activeElement.id === 'text');
  await page.keyboard.type('Typed at 360 px, sent with Enter ⌨️');
  await page.keyboard.press('Enter');
  await page.waitForSelector(SENT);
  await page.keyboard.type('a second line…');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('…in the same message');
  await page.keyboard.press('Enter');
  await countIs(page, SENT, 2);
  assert.equal(await page.locator('li.msg.out .text').nth(1).textContent(), 'a second line…\n…in the same message');
  const box = await page.locator('#send').boundingBox();
  assert.ok(box && box.x + box.width <= 360, 'the send button is on screen');
  assert.ok(await noOverflow(), 'no horizontal scrolling in the conversation');
  await L.shot(page, '08-phone-conversation');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#sidebar:visible');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.peer), String(b));
  await L.shot(page, '08-phone-list');
  await L.finish([A]);
});

test('files over the server\'s max_frame, or not media, are refused with a message', async () => {
  const [a, b] = ids(2);
  const A = await L.loggedIn(browser, server, a, b);
  const max = await A.page.evaluate(() => Number(localStorage.getItem('chat.maxFrame')));
  assert.ok(max > 0, 'WELCOME told the page its max_frame');
  await A.page.setInputFiles('#file-input', { name: 'big.png', mimeType: 'image/png', buffer: Buffer.alloc(max + 1) });
  await A.page.waitForSelector('#alert li:has-text("big.png is")');
  assert.match(await A.page.locator('#alert').textContent(), /takes at most .*Nothing was sent/);
  await A.page.setInputFiles('#file-input', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') });
  await A.page.waitForSelector('#alert li:has-text("notes.txt is not a picture")');
  await L.shot(A.page, '09-refused-files');
  assert.equal(await A.page.locator('li.msg.out').count(), 0, 'nothing was queued');
  if (max <= 2 << 20) {
    // Exactly max_frame bytes is allowed, and goes through.
    const edge = Buffer.concat([L.makePng(8, 8, () => [0, 0, 0]), randomBytes(max)]).subarray(0, max);
    await A.page.setInputFiles('#file-input', { name: 'edge.png', mimeType: 'image/png', buffer: edge });
    await A.page.waitForSelector(SENT);
  }
  await A.page.click('#alert-close');
  await A.page.waitForSelector('#alert', { state: 'hidden' });
  await L.finish([A]);
});

test('login with a password (--auth on): wrong one refused, right one accepted', { skip: ownServerOnly }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'chat-browser-auth-'));
  const user = 7;
  const add = spawnSync(L.SERVER, ['user', '--data-dir', dir, 'add', String(user)], { input: 'pässwörd 🔑\n', encoding: 'utf8' });
  assert.equal(add.status, 0, `chat-server user add: ${add.stderr}`);
  const s = await L.startServer({ extra: ['--auth', 'on'], dataDir: dir });
  try {
    const A = await L.newPerson(browser, s);
    await A.page.fill('#login-user', String(user));
    await A.page.fill('#login-password', 'wrong');
    await A.page.click('#login-form button[type=submit]');
    await A.page.waitForSelector('#login-error:has-text("AUTH")');
    assert.ok(await A.page.isVisible('#login-form'));
    await L.shot(A.page, '10-wrong-password');
    await L.login(A.page, user, 'pässwörd 🔑');
    await L.shot(A.page, '10-logged-in-with-password');
    // The password is not kept: a reload asks for it again.
    await A.page.reload();
    await A.page.waitForSelector('#login-form');
    assert.equal(await A.page.inputValue('#login-user'), String(user));
    await L.finish([A]);
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('server errors are shown; after a restart the page reconnects and resends', { skip: ownServerOnly }, async () => {
  const [a, z] = ids(2);
  let s = await L.startServer({ extra: ['--offline-max-messages', '2', '--max-frame', '1M'] });
  const ports = { tcp: s.tcpPort, http: s.httpPort };
  const dataDir = s.dataDir;
  let listener = null;
  try {
    const A = await L.loggedIn(browser, s, a, z);
    for (const t of ['q1', 'q2']) await L.sendText(A.page, t);
    await countIs(A.page, SENT, 2);
    await L.sendText(A.page, 'q3 over the quota');
    await A.page.waitForSelector('li.msg.out[data-status="failed"] .msg-error:has-text("QUOTA")');
    await A.page.waitForSelector('#alert li:has-text("Server error QUOTA")');
    await L.shot(A.page, '11-quota-refused');

    // A picture is on its way (slow uplink) when the server dies: it was
    // not acknowledged, so it is sent again after the reconnection.
    const pic = noisyPng(7);
    const cdp = await A.context.newCDPSession(A.page);
    await cdp.send('Network.enable');
    await uplink(cdp, 128 * 1024);
    await A.page.setInputFiles('#file-input', { name: 'lost.png', mimeType: 'image/png', buffer: pic });
    await A.page.waitForSelector('li.msg.out[data-type="2"][data-status="pending"]');
    await s.stop('SIGKILL');
    await uplink(cdp, -1);
    await A.page.waitForSelector('#status[data-state=backoff]');
    await L.sendText(A.page, 'sent while the server was down');
    await countIs(A.page, 'li.msg.out[data-status="pending"]', 2);
    await L.shot(A.page, '11-server-down');

    // Restarted without the quota; the page comes back by its back-off
    // timer or by "Retry now", whichever is first.
    s = await L.startServer({ extra: ['--max-frame', '1M'], ports, dataDir });
    listener = await L.startListener(s.tcpPort, z, ['--save-dir', saveDir]);
    await A.page.evaluate(() => document.getElementById('retry').click());
    await A.page.waitForSelector('#status[data-state=online]');
    await A.page.waitForSelector('li.msg.out[data-status="pending"]', { state: 'detached' });
    const got = await listener.waitFor((o) => o.length >= 4, 'the resent messages');
    assert.deepEqual(got.map((m) => m.text || m.type), ['q1', 'q2', 'picture', 'sent while the server was down']);
    assert.ok(readFileSync(got[2].file).equals(pic), 'the picture came whole');
    await L.shot(A.page, '11-reconnected');
    await L.finish([A], /WebSocket connection to .* failed/);
  } finally {
    if (listener) await listener.stop();
    await s.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the server\'s PINGs are answered: an idle page stays connected', { skip: ownServerOnly }, async () => {
  const [a] = ids(1);
  const s = await L.startServer({ extra: ['--idle-timeout', '1s'] });
  try {
    const A = await L.newPerson(browser, s);
    // Chat frames seen on the page's WebSocket (Chromium's own record).
    const cdp = await A.context.newCDPSession(A.page);
    await cdp.send('Network.enable');
    const seen = [];
    let wake = () => {};
    const onFrame = (dir) => ({ requestId, response }) => {
      if (response.opcode !== 2) return;
      const f = Buffer.from(response.payloadData, 'base64');
      seen.push({ requestId, dir, type: dir === 'in' ? f[4] : f[8] });
      wake();
    };
    cdp.on('Network.webSocketFrameReceived', onFrame('in'));
    cdp.on('Network.webSocketFrameSent', onFrame('out'));
    const twoRounds = () => {
      const pings = seen.filter((x) => x.dir === 'in' && x.type === 0x84);
      const sock = pings[0] && pings[0].requestId;
      const on = (dir, type) => seen.filter((x) => x.requestId === sock && x.dir === dir && x.type === type).length;
      return on('in', 0x84) >= 2 && on('out', 0x85) >= 2;
    };
    await L.login(A.page, a);
    // Idle for 0.5 s: a PING; answered, so the connection lives on to
    // the next PING, on the same socket, instead of being closed at 1 s.
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no second PING/PONG round: ${JSON.stringify(seen)}`)), L.WAIT_MS);
      wake = () => twoRounds() && (clearTimeout(timer), resolve());
      wake();
    });
    assert.equal(await A.page.getAttribute('#status', 'data-state'), 'online');
    await L.finish([A]);
  } finally {
    await s.stop();
    await s.cleanup();
  }
});

// ------------------------------------- devices: one user in two browsers

// A page whose WELCOME granted CONV shows its device name.
async function assertConv(page) {
  await page.waitForSelector('#status[data-state=online]');
  assert.ok(await page.isVisible('#device'), 'the server granted CONV (devices, MSG, POST)');
  assert.match(await page.textContent('#device'), /^Device web-[a-z0-9]{8}$/);
}

// The messages of the open conversation, in order: [dir, text] (lines
// about a group left out).
const shown = (page) => page.locator('li.msg:not(.sys)').evaluateAll((lis) =>
  lis.map((li) => [li.classList.contains('out') ? 'out' : 'in', li.querySelector('.text')?.textContent]));

test('devices: a message written in one browser appears as own in the other', async () => {
  const [u, v] = ids(2);
  const A = await L.loggedIn(browser, server, u, v);
  const B = await L.loggedIn(browser, server, u); // the same user, another browser: another device
  const V = await L.loggedIn(browser, server, v, u);
  for (const p of [A, B, V]) await assertConv(p.page);
  assert.notEqual(await A.page.textContent('#device'), await B.page.textContent('#device'));

  await L.sendText(A.page, 'written on A ✍️');
  await L.msgText(V.page, 'in', 'written on A ✍️').waitFor();
  // B lists the conversation with v, A's message its preview, nothing unread.
  const item = `#conv-list [data-peer="${v}"]`;
  await B.page.waitForSelector(`${item} .conv-preview:text-is("written on A ✍️")`);
  assert.equal(await B.page.locator(`${item} .badge`).count(), 0, 'an own message is never unread');
  await B.page.click(item);
  await L.msgText(B.page, 'out', 'written on A ✍️').waitFor();
  const li = B.page.locator('li.msg.out', { has: B.page.locator('.text:text-is("written on A ✍️")') });
  assert.equal(await li.getAttribute('data-origin'), 'elsewhere');
  assert.equal(await li.getAttribute('data-status'), 'sent');
  // (with receipts: ", delivered" or ", read" once V has it, or has shown it)
  assert.match(await li.locator('.mark').getAttribute('aria-label'), /^sent from another device(, delivered|, read)?$/);

  await L.sendText(B.page, 'and this on B');
  await L.msgText(A.page, 'out', 'and this on B').waitFor();
  await L.msgText(V.page, 'in', 'and this on B').waitFor();
  await L.sendText(V.page, 'to both of your devices');
  for (const p of [A, B]) await L.msgText(p.page, 'in', 'to both of your devices').waitFor();
  // V's answer came after both: each device has the three once, in order
  // (A never gets its own message back, nor B its own).
  const want = [['out', 'written on A ✍️'], ['out', 'and this on B'], ['in', 'to both of your devices']];
  assert.deepEqual(await shown(A.page), want);
  assert.deepEqual(await shown(B.page), want);
  await L.shot(A.page, '12-devices-a');
  await L.shot(B.page, '12-devices-b');
  await L.finish([A, B, V]);
});

test('devices: what arrives while one browser is closed appears when it comes back', async () => {
  const [u, v] = ids(2);
  const A = await L.loggedIn(browser, server, u, v);
  const B = await L.loggedIn(browser, server, u);
  const V = await L.loggedIn(browser, server, v, u);
  for (const p of [A, B, V]) await assertConv(p.page);
  await B.page.close(); // the device is known to the server: it keeps what B lacks

  await L.sendText(V.page, 'while B was closed 🌙');
  await L.msgText(A.page, 'in', 'while B was closed 🌙').waitFor(); // A, online, has it too
  await L.sendText(A.page, 'answered on A');
  await L.msgText(V.page, 'in', 'answered on A').waitFor();

  const page = await B.context.newPage(); // the same profile: the same device
  L.watchPage(page);
  await page.goto(server.webUrl);
  await L.login(page, u);
  await page.waitForSelector(`#conv-list [data-peer="${v}"] .conv-preview:text-is("answered on A")`);
  if (await signalsOn(page)) {
    // A has shown V's message: with receipts the page learns it (its QUERY
    // at login gives this user's READ mark), so it is not unread here either.
    await page.locator(`#conv-list [data-peer="${v}"] .badge`).waitFor({ state: 'detached' });
  } else {
    await page.waitForSelector(badge(v, 1)); // V's message is unread, A's answer is not
  }
  await page.click(`#conv-list [data-peer="${v}"]`);
  await L.msgText(page, 'out', 'answered on A').waitFor();
  assert.deepEqual(await shown(page), [['in', 'while B was closed 🌙'], ['out', 'answered on A']]);
  await L.shot(page, '13-device-back');
  await L.finish([A, B, V]);
});

// The page's connection has SIGNALS (receipts, typing, presence).
async function signalsOn(page) {
  await page.waitForFunction(() => document.documentElement.dataset.signals !== undefined);
  return (await page.getAttribute('html', 'data-signals')) === 'on';
}

// A tap (L.tapChat) that records the frames going `rec.dir` of type
// rec.type (rec.fields(frame) of each), and, once armed, drops the first
// frame going lose.dir of type lose.type (counted in `lost`): armed 'cut'
// cuts the connection with it (lost just before that frame), 'drop' only
// drops it. seen.wake() after each.
function recordAndLose(seen, rec, lose) {
  const t = { armed: null, frames: [], lost: 0 };
  t.tap = ({ dir, type, frame, socket }) => {
    if (dir === rec.dir && type === rec.type) {
      t.frames.push(rec.fields(frame));
      seen.wake();
    }
    if (!t.armed || dir !== lose.dir || type !== lose.type) return true;
    if (t.armed === 'cut') socket.cut();
    t.armed = null;
    t.lost++;
    seen.wake();
    return false;
  };
  return t;
}

test('devices: a message resent after a dropped connection shows once', async () => {
  const [u, v] = ids(2);
  const seen = L.watched(() => JSON.stringify([a.frames, b.frames], (k, x) => (typeof x === 'bigint' ? String(x) : x)));
  const copies = (frames, text) => () => frames.filter((x) => x.text === text);
  // A (u) records its POSTs (13-byte header, kind, flags, cid); armed, the
  // server's ACK of the next one is lost with the connection, so A sends it
  // again on the next.
  const a = recordAndLose(seen, { dir: 'up', type: 0x87, fields: (f) => ({ cid: f.readBigUInt64BE(15), text: f.subarray(23).toString() }) },
    { dir: 'down', type: 0x82 });
  // V (v) records the MSGs it gets (9-byte header, id, ...); armed, its ACK
  // of the next one is lost with the connection, so the server sends it again.
  const b = recordAndLose(seen, { dir: 'down', type: 0x86, fields: (f) => ({ id: f.readBigUInt64BE(9), text: f.subarray(31).toString() }) },
    { dir: 'up', type: 0x82 });
  const A = await L.loggedIn(browser, server, u, v, { tap: a.tap });
  const V = await L.loggedIn(browser, server, v, u, { tap: b.tap });
  const B = await L.loggedIn(browser, server, u, v); // u's other device: both are own there
  for (const p of [A, B, V]) await assertConv(p.page);

  // The sender's side: the same cid twice, one message.
  a.armed = 'cut';
  await L.sendText(A.page, 'sent twice, shown once');
  const [p1, p2] = await seen.until(copies(a.frames, 'sent twice, shown once'), (l) => l.length === 2, 'the POST sent again');
  assert.equal(p1.cid, p2.cid, 'a resend keeps its cid');
  assert.ok(p1.cid > 0n);
  await A.page.waitForSelector(`${SENT}:has(.text:text-is("sent twice, shown once"))`);
  await L.sendText(A.page, 'marker 1');
  await L.msgText(V.page, 'in', 'marker 1').waitFor();
  await L.msgText(B.page, 'out', 'marker 1').waitFor();
  assert.equal(await L.msgText(V.page, 'in', 'sent twice, shown once').count(), 1, 'the receiver shows it once');
  assert.equal(await L.msgText(B.page, 'out', 'sent twice, shown once').count(), 1, 'the other device shows it once');
  assert.equal(await L.msgText(A.page, 'out', 'sent twice, shown once').count(), 1);

  // The receiver's side: the same MSG twice, shown once.
  b.armed = 'cut';
  await L.sendText(A.page, 'received twice, shown once');
  const [m1, m2] = await seen.until(copies(b.frames, 'received twice, shown once'), (l) => l.length === 2, 'the MSG sent again');
  assert.equal(m1.id, m2.id, 'the same message (server id) again');
  await L.sendText(A.page, 'marker 2'); // comes after the second copy
  await L.msgText(V.page, 'in', 'marker 2').waitFor();
  assert.equal(await L.msgText(V.page, 'in', 'received twice, shown once').count(), 1, 'a copy of a MSG kept is dropped');

  // After a reload: the page sends again what waits in its store, with the
  // cid stored with it.
  a.armed = 'drop';
  await L.sendText(A.page, 'sent again after a reload');
  await seen.until(() => a.lost, (n) => n === 2, 'the ACK of the message before the reload'); // so the server has it
  await A.page.reload();
  const [r1, r2] = await seen.until(copies(a.frames, 'sent again after a reload'), (l) => l.length === 2, 'the POST sent after the reload');
  assert.equal(r1.cid, r2.cid, 'the cid was kept with the message');
  await A.page.waitForSelector(`#conv-title:text-is("User ${v}")`);
  await A.page.waitForSelector(`${SENT}:has(.text:text-is("sent again after a reload"))`);
  await L.sendText(A.page, 'marker 3');
  await L.msgText(V.page, 'in', 'marker 3').waitFor();
  assert.equal(await L.msgText(V.page, 'in', 'sent again after a reload').count(), 1, 'shown once after the reload');
  assert.deepEqual(await shown(V.page), [['in', 'sent twice, shown once'], ['in', 'marker 1'],
    ['in', 'received twice, shown once'], ['in', 'marker 2'], ['in', 'sent again after a reload'], ['in', 'marker 3']]);
  await L.shot(V.page, '14-resent-once');
  await L.finish([A, B, V]);
});

// ------------------------------------------------------------------ groups

// Create a group from the page's form; resolves to its id once the page
// shows it open.
async function createGroup(page, name, members) {
  if (!(await page.isVisible('#new-group-form'))) await page.click('#new-group summary');
  await page.fill('#group-name', name);
  await page.fill('#group-members', members.join(', '));
  await page.click('#new-group-form button[type=submit]');
  await page.waitForSelector(`#conv-title:text-is("${name}")`);
  const key = await page.getAttribute('#conv-list [aria-current="true"]', 'data-peer');
  assert.match(key, /^g[0-9]+$/);
  return Number(key.slice(1));
}

const groupItem = (gid) => `#conv-list [data-peer="g${gid}"]`;
// A message of the open conversation by author (in) with exactly this text.
const byAuthor = (page, author, text) => L.msgText(page, 'in', text).locator(`xpath=ancestor::li[@data-author="${author}"]`);
const sysLine = (page, text) => page.locator('li.msg.sys .sys-text', { hasText: text });
const openMembers = async (page) => {
  if ((await page.getAttribute('#group-toggle', 'aria-expanded')) !== 'true') await page.click('#group-toggle');
  await page.waitForSelector('#member-list li');
};

test('groups: create, both pages see it, messages both ways with their authors, rename, remove, leave', async () => {
  const [a, b, c] = ids(3);
  const A = await L.loggedIn(browser, server, a);
  const B = await L.loggedIn(browser, server, b);
  const C = await L.rawMember(server.tcpPort, c); // a third member that is no page
  for (const p of [A, B]) await assertConv(p.page);
  await A.page.waitForSelector('#new-group:not([hidden])');
  const gid = await createGroup(A.page, 'Trip ✈️', [b, c]);
  await A.page.waitForSelector('#conv-sub:text-is("3 members")');
  await sysLine(A.page, 'You created the group “Trip ✈️”.').waitFor();
  // The server keeps no history here (--history-ttl 0): an empty page,
  // nothing shown, no error.
  await A.page.waitForSelector('#messages[data-history="end"]');

  // B's list shows it, by its name, as a group; the event says who made it.
  await B.page.waitForSelector(`${groupItem(gid)} .conv-name:has-text("Trip ✈️")`);
  assert.equal(await B.page.textContent(`${groupItem(gid)} .tag`), 'group');
  await B.page.click(groupItem(gid));
  await B.page.waitForSelector('#conv-title:text-is("Trip ✈️")');
  await sysLine(B.page, `User ${a} created the group “Trip ✈️”.`).waitFor();
  await B.page.waitForSelector('#messages[data-history="end"]');
  const [created] = await C.until(C.events, (e) => e.length >= 1, 'the created event');
  assert.deepEqual(created, { group: gid, what: 1, by: a, users: [b, c], name: 'Trip ✈️' });

  // Messages both ways, each with its author; own ones on the right.
  await L.sendText(A.page, 'hello group 👋');
  await byAuthor(B.page, a, 'hello group 👋').waitFor();
  await L.sendText(B.page, 'hi from B');
  await byAuthor(A.page, b, 'hi from B').waitFor();
  C.post(gid, 'hi from the raw member', { group: true });
  for (const p of [A, B]) await byAuthor(p.page, c, 'hi from the raw member').waitFor();
  const got = await C.until(C.msgs, (m) => m.length >= 2, 'the two pages\' messages');
  assert.deepEqual(got.map((m) => [m.sender, m.group, m.to, m.text]), [[a, true, gid, 'hello group 👋'], [b, true, gid, 'hi from B']]);
  await A.page.waitForSelector(`${SENT}:has(.text:text-is("hello group 👋"))`);
  await B.page.waitForSelector(`${SENT}:has(.text:text-is("hi from B"))`);
  assert.deepEqual(await shown(A.page), [['out', 'hello group 👋'], ['in', 'hi from B'], ['in', 'hi from the raw member']],
    'A: its own on the right, the others\' on the left');
  assert.equal(await A.page.locator(`${groupItem(gid)} .conv-preview`).textContent(), `User ${c}: hi from the raw member`);

  // The members: A (admin) may add, remove and rename; B may not.
  await openMembers(A.page);
  await A.page.waitForSelector('#member-count:text-is("3 members, 1 admin")');
  assert.ok(await A.page.isVisible('#rename-form'));
  await openMembers(B.page);
  await B.page.waitForSelector('#member-count:text-is("3 members, 1 admin")');
  assert.ok(!(await B.page.isVisible('#rename-form')) && !(await B.page.isVisible('#add-members')), 'B is no admin');
  assert.equal(await B.page.locator('#member-list .remove').count(), 0);
  await L.shot(A.page, '15-group-admin');

  // A renames it: B's title, list and a line follow.
  await A.page.fill('#rename-name', 'Trip 2025');
  await A.page.click('#rename-form button[type=submit]');
  await B.page.waitForSelector('#conv-title:text-is("Trip 2025")');
  await B.page.waitForSelector(`${groupItem(gid)} .conv-name:has-text("Trip 2025")`);
  await sysLine(B.page, `User ${a} renamed the group to “Trip 2025”.`).waitFor();
  await C.until(C.events, (e) => e.some((x) => x.what === 2 && x.name === 'Trip 2025'), 'the renamed event');

  // A removes the raw member: it is told, and may no longer post.
  await A.page.click(`#member-list li[data-user="${c}"] .remove`);
  await A.page.waitForSelector('#member-count:text-is("2 members, 1 admin")');
  await sysLine(B.page, `User ${a} removed User ${c}.`).waitFor();
  await C.until(C.events, (e) => e.some((x) => x.what === 4 && x.users.includes(c)), 'the removed event');
  C.post(gid, 'still here?', { group: true });
  const [refused] = await C.until(C.errors, (e) => e.length >= 1, 'ERROR GROUP');
  assert.equal(refused.code, 14);
  await L.shot(B.page, '15-group-member');

  // B leaves: no composer any more, and the list says so; A is told.
  await B.page.click('#leave');
  await B.page.click('#leave-yes');
  await B.page.waitForSelector('#left-note:visible');
  assert.ok(await B.page.isHidden('#composer-box'));
  await B.page.waitForSelector(`${groupItem(gid)} .tag:text-is("left")`);
  await sysLine(A.page, `User ${b} left the group.`).waitFor();
  await A.page.waitForSelector('#conv-sub:text-is("1 member")');
  // What A writes to the group now does not reach B: a message to B
  // after it proves the group's would have come first.
  await L.sendText(A.page, 'after B left');
  await A.page.waitForSelector(`${SENT}:has(.text:text-is("after B left"))`);
  await L.openConv(A.page, b);
  await L.sendText(A.page, 'marker to B');
  await B.page.waitForSelector(badge(a, 1));
  assert.equal(await L.msgText(B.page, 'in', 'after B left').count(), 0);
  assert.equal(await B.page.locator('#alert').isHidden(), true, 'no error shown');
  await L.shot(B.page, '15-group-left');
  C.close();
  await L.finish([A, B]);
});

test('groups: a refused operation is told as a sentence (ERROR GROUP)', { skip: ownServerOnly }, async () => {
  const [a, b, c] = ids(3);
  const s = await L.startServer({ extra: ['--max-group-members', '2'] });
  try {
    const A = await L.loggedIn(browser, s, a);
    await assertConv(A.page);
    await A.page.click('#new-group summary');
    await A.page.fill('#group-name', 'Too many');
    await A.page.fill('#group-members', `${b} ${c}`);
    await A.page.click('#new-group-form button[type=submit]');
    await A.page.waitForSelector('#new-group-error:text-is("Could not create the group: a group has at most 2 members (--max-group-members).")');
    await A.page.fill('#group-members', `${b} x`);
    await A.page.click('#new-group-form button[type=submit]');
    await A.page.waitForSelector('#new-group-error:text-is("“x” is not a user id (1 to 4294967295).")');
    const gid = await createGroup(A.page, 'Two', [b]);
    await openMembers(A.page);
    await A.page.fill('#add-ids', String(c));
    await A.page.click('#add-members button[type=submit]');
    await A.page.waitForSelector('#group-error:text-is("Could not add them: a group has at most 2 members (--max-group-members).")');
    assert.equal(await A.page.locator('#alert').isHidden(), true, 'told where it was asked, not as a server error');
    await L.shot(A.page, '16-group-refused');
    assert.ok(gid > 0);
    await L.finish([A]);
  } finally {
    await s.cleanup();
  }
});

// ------------------------------------------------------------- scroll-back

const historyIs = (page, state) => page.waitForSelector(`#messages[data-history="${state}"]`);
const texts = (page) => page.locator('li.msg:not(.sys) .text').allTextContents();

// Scroll the open conversation to its top until the server has no older
// page; each scroll must bring messages in.
async function scrollBackToStart(page) {
  for (let pages = 0; (await page.getAttribute('#messages', 'data-history')) !== 'end'; pages++) {
    assert.ok(pages < 20, 'the history ends');
    const n = await page.locator('li.msg').count();
    await page.evaluate(() => (document.getElementById('messages').scrollTop = 0));
    await page.waitForFunction((k) => {
      const m = document.getElementById('messages');
      return m.dataset.history !== 'loading' && m.querySelectorAll('li.msg').length > k;
    }, n);
  }
}

test('scroll-back: older messages come from the server\'s history, page by page, in order, once each', { skip: ownServerOnly }, async () => {
  const [a, r, q] = ids(3);
  const s = await L.startServer({ extra: ['--history-ttl', '1h', '--max-frame', '1M'] });
  const R = await L.rawMember(s.tcpPort, r);
  const Q = await L.rawMember(s.tcpPort, q);
  try {
    const A = await L.loggedIn(browser, s, a);
    await assertConv(A.page);
    // A conversation that starts with a message A wrote here (the page
    // knows no server id for it), then an answer.
    await L.openConv(A.page, q);
    await historyIs(A.page, 'end'); // nothing yet: an empty page
    await L.sendText(A.page, 'own first');
    await A.page.waitForSelector(SENT);
    Q.post(a, 'reply');
    await L.msgText(A.page, 'in', 'reply').waitFor();

    // A long conversation: more than the page shows from its store (200).
    await L.openConv(A.page, r);
    await L.sendText(A.page, 'a-early');
    await countIs(A.page, SENT, 1);
    const fromR = Array.from({ length: 320 }, (_, i) => `r-${String(i + 1).padStart(3, '0')}`);
    for (const t of fromR) R.post(a, t);
    await countIs(A.page, 'li.msg.in', fromR.length);
    await L.sendText(A.page, 'a-late');
    await countIs(A.page, SENT, 2);
    const all = ['a-early', ...fromR, 'a-late'];

    await A.page.reload();
    await A.page.waitForSelector('#status[data-state=online]');
    await A.page.waitForSelector(`#conv-title:text-is("User ${r}")`);
    // The last 200 from the page's store, and at once the page of 50 before
    // them; then, scrolled to the top, the older pages until no more.
    await historyIs(A.page, 'more');
    assert.deepEqual(await texts(A.page), all.slice(-250));
    await L.shot(A.page, '17-scroll-back-first-page');
    await scrollBackToStart(A.page);
    assert.deepEqual(await texts(A.page), all, 'every message once, in order');
    assert.equal(await A.page.locator('li.msg[data-history="1"]').count(), 122, 'those beyond the 200 came from the server');
    assert.equal(await A.page.getAttribute('li.msg:first-child', 'class'), 'msg out', 'a-early is A\'s own, on the right');
    assert.equal(await A.page.locator('li.msg.out .text:text-is("a-early") >> xpath=../../p[@class="meta"]/span[contains(@class, "mark")]').textContent(), '✓');
    await L.shot(A.page, '17-scroll-back-start');

    // The short one: "own first" has no server id in the page; its history
    // entry is recognised as it, not shown twice.
    await A.page.click(`#conv-list [data-peer="${q}"]`);
    // (the conversation of r ended its history too: wait for q's title first)
    await A.page.waitForSelector(`#conv-title:text-is("User ${q}")`);
    await A.page.waitForFunction(() => [...document.querySelectorAll(
      'li.msg:not(.sys) .text')].map((e) => e.textContent).join('|') === 'own first|reply');
    await historyIs(A.page, 'end');
    assert.deepEqual(await texts(A.page), ['own first', 'reply']);
    assert.ok(await A.page.getAttribute('li.msg.out', 'data-msg-id'), 'the entry gave it its server id');
    assert.equal(await A.page.locator('li.msg[data-history="1"]').count(), 0);
    assert.ok(await A.page.isHidden('#alert'), 'no error');
    await L.finish([A]);
  } finally {
    R.close();
    Q.close();
    await s.cleanup();
  }
});

test('scroll-back: a new device reads a group\'s history, with the authors', { skip: ownServerOnly }, async () => {
  const [a, r] = ids(2);
  const s = await L.startServer({ extra: ['--history-ttl', '1h', '--max-frame', '1M'] });
  const R = await L.rawMember(s.tcpPort, r);
  try {
    const A = await L.loggedIn(browser, s, a);
    await assertConv(A.page);
    const gid = await createGroup(A.page, 'Read back', [r]);
    await R.until(R.events, (e) => e.length >= 1, 'the created event');
    const fromR = Array.from({ length: 60 }, (_, i) => `g-${String(i + 1).padStart(2, '0')}`);
    for (const t of fromR) R.post(gid, t, { group: true });
    await countIs(A.page, 'li.msg.in', fromR.length);
    await L.sendText(A.page, 'g-own');
    await A.page.waitForSelector(SENT);

    // Another browser of A: a device the server has not seen, which starts
    // where A's other device is (everything had): the group is listed, its
    // messages come from the history.
    const A2 = await L.loggedIn(browser, s, a);
    await A2.page.click(groupItem(gid));
    await A2.page.waitForSelector('#conv-title:text-is("Read back")');
    await historyIs(A2.page, 'more');
    await scrollBackToStart(A2.page);
    assert.deepEqual(await texts(A2.page), [...fromR, 'g-own']);
    const authors = await A2.page.locator('li.msg.in').evaluateAll((lis) => lis.map((li) => li.dataset.author));
    assert.deepEqual(authors, fromR.map(() => String(r)));
    await L.msgText(A2.page, 'in', 'g-01').locator('xpath=ancestor::li').locator(`.author:text-is("User ${r}")`).waitFor();
    assert.equal(await A2.page.locator('li.msg.out').count(), 1);
    await L.shot(A2.page, '18-group-history');
    await L.finish([A, A2]);
  } finally {
    R.close();
    await s.cleanup();
  }
});

test('groups at phone width (360 px), by keyboard: create one, its members, back to the list', async () => {
  const [a, b] = ids(2);
  const A = await L.newPerson(browser, server, { viewport: { width: 360, height: 740 } });
  const { page } = A;
  const noOverflow = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  await L.login(page, a);
  await page.waitForSelector('#new-group:not([hidden])');
  await page.focus('#new-peer');
  await page.keyboard.press('Tab'); // the Open button
  await page.keyboard.press('Tab'); // "New group"
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'SUMMARY');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  await page.keyboard.type('A group whose name is too long for a phone 📱');
  await page.keyboard.press('Tab');
  await page.keyboard.type(String(b));
  assert.ok(await noOverflow(), 'no horizontal scrolling in the form');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#conv:visible');
  await page.waitForSelector('#group-toggle:visible');
  const box = await page.locator('#group-toggle').boundingBox();
  assert.ok(box && box.x + box.width <= 360, 'the members button is on screen');
  await page.click('#group-toggle');
  await page.waitForSelector(`#member-list li[data-user="${b}"] .remove`);
  assert.ok(await noOverflow(), 'no horizontal scrolling in the group');
  await L.shot(page, '19-group-phone');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#sidebar:visible');
  await L.finish([A]);
});

// ------------------------------------------- receipts, typing, presence

// Wait until the own message `text` of the open conversation has the
// receipt `level` ('' none yet, 'delivered', 'read') and shows `mark`.
async function tickIs(page, text, level, mark) {
  await page.waitForFunction(([t, l, m]) => {
    const li = [...document.querySelectorAll('li.msg.out')].find((e) => e.querySelector('.text')?.textContent === t);
    return !!li && (li.dataset.receipt || '') === l && li.querySelector('.mark').textContent === m;
  }, [text, level, mark]);
}

// From now on, record every receipt level an own message takes: levels()
// gives them, in order, for the message whose text is t.
async function recordLevels(page) {
  await page.evaluate(() => {
    window.chatLevels = [];
    new MutationObserver((rs) => {
      for (const r of rs) window.chatLevels.push([r.target.querySelector('.text')?.textContent, r.target.dataset.receipt || '']);
    }).observe(document.getElementById('messages'), { subtree: true, attributes: true, attributeFilter: ['data-receipt'] });
  });
  return (t) => page.evaluate((x) => window.chatLevels.filter(([text]) => text === x).map(([, l]) => l), t);
}

// The open conversation's receipts are known (its QUERY answered: END).
const receiptsReady = (page) => page.waitForSelector('#messages[data-receipts="ready"]');

test('receipts: ✓ once delivered, ✓✓ once read; read on one device is read on the other; marks again after a reload', async () => {
  const [a, b, x] = ids(3);
  const A = await L.loggedIn(browser, server, a, b);
  const B = await L.loggedIn(browser, server, b, x); // B looks at another conversation
  const B2 = await L.loggedIn(browser, server, b); // B's other device (browser)
  await receiptsReady(A.page); // SIGNALS granted, the QUERY answered

  await L.sendText(A.page, 'are you there?');
  await B.page.waitForSelector(badge(a, 1));
  await B2.page.waitForSelector(badge(a, 1));
  // B's devices have it, neither shows it: one tick.
  await tickIs(A.page, 'are you there?', 'delivered', '✓');
  assert.equal(await A.page.getAttribute('li.msg.out .mark', 'aria-label'), 'delivered');
  await L.shot(A.page, '20-receipt-delivered');

  // B opens it: two ticks at A; B's other device no longer counts it unread.
  await B.page.click(`#conv-list [data-peer="${a}"]`);
  await L.msgText(B.page, 'in', 'are you there?').waitFor();
  await tickIs(A.page, 'are you there?', 'read', '✓✓');
  await B2.page.locator(`#conv-list [data-peer="${a}"] .badge`).waitFor({ state: 'detached' });
  await L.shot(A.page, '20-receipt-read');
  await L.shot(B2.page, '20-receipt-read-elsewhere');

  // B has it open: the next message goes to ✓✓ at once (possibly through
  // ✓), never back.
  const levels = await recordLevels(A.page);
  await L.sendText(A.page, 'and now?');
  await L.msgText(B.page, 'in', 'and now?').waitFor();
  await tickIs(A.page, 'and now?', 'read', '✓✓');
  const seen = await levels('and now?');
  const order = ['', 'delivered', 'read'];
  assert.ok(seen.every((l, i) => i === 0 || order.indexOf(l) >= order.indexOf(seen[i - 1])), `levels only move forward: ${seen}`);
  assert.equal(await B.page.locator(`#conv-list [data-peer="${a}"] .badge`).count(), 0);

  // After a reload A asks the marks again (QUERY): both still ✓✓.
  await A.page.reload();
  await A.page.waitForSelector('#status[data-state=online]');
  await A.page.waitForSelector(`#conv-title:text-is("User ${b}")`);
  await receiptsReady(A.page);
  await tickIs(A.page, 'are you there?', 'read', '✓✓');
  await tickIs(A.page, 'and now?', 'read', '✓✓');
  await L.finish([A, B, B2]);
});

test('typing: shown at the other page while the other types, gone once sent or cleared', async () => {
  const [a, b] = ids(2);
  const A = await L.loggedIn(browser, server, a, b);
  const B = await L.loggedIn(browser, server, b, a);
  await receiptsReady(B.page);
  await B.page.fill('#text', 'I am writ');
  await A.page.waitForSelector(`#typing:text-is("User ${b} is typing…")`);
  await L.shot(A.page, '21-typing');
  await L.sendText(B.page, 'I am writing back');
  await L.msgText(A.page, 'in', 'I am writing back').waitFor();
  await A.page.waitForSelector('#typing', { state: 'hidden' });
  // Typing again, then the draft is cleared: gone too.
  await B.page.fill('#text', 'hm');
  await A.page.waitForSelector(`#typing:text-is("User ${b} is typing…")`);
  await B.page.fill('#text', '');
  await A.page.waitForSelector('#typing', { state: 'hidden' });
  // A looking at another conversation does not show B's typing there.
  await L.openConv(A.page, b + 1000000);
  await B.page.fill('#text', 'still there?');
  await L.openConv(A.page, b);
  await A.page.waitForSelector(`#typing:text-is("User ${b} is typing…")`);
  await L.finish([A, B]);
});

test('presence: the other user online while its page is open, "last seen" once it is closed', async () => {
  const [a, b] = ids(2);
  const B = await L.loggedIn(browser, server, b, a);
  const A = await L.loggedIn(browser, server, a, b);
  const dot = (state) => `#conv-list [data-peer="${b}"] .presence[data-state="${state}"]`;
  await A.page.waitForSelector(dot('online'));
  await A.page.waitForSelector('#conv-sub[data-presence="online"]:text-is("online")');
  await L.shot(A.page, '22-presence-online');
  // B types, then its page goes away without a word: A's typing line goes
  // (by itself within 6 s, if nothing says so), B is offline, last seen now.
  await B.page.fill('#text', 'gone in a moment');
  await A.page.waitForSelector(`#typing:text-is("User ${b} is typing…")`);
  const errors = B.context.chatErrors;
  await B.context.close();
  assert.deepEqual(errors, [], 'errors in B\'s page');
  await A.page.waitForSelector(dot('offline'));
  await A.page.waitForSelector('#conv-sub[data-presence="offline"]:text-matches("^last seen [0-9]")');
  await A.page.waitForSelector('#typing', { state: 'hidden' });
  await L.shot(A.page, '22-presence-last-seen');
  // B back: online again.
  const B2 = await L.loggedIn(browser, server, b);
  await A.page.waitForSelector(dot('online'));
  await L.finish([A, B2]);
});

test('receipts in a group of three: ✓ once delivered, "read 1/2" while one member has read it, ✓✓ once both have', async () => {
  const [a, b, c] = ids(3);
  const A = await L.loggedIn(browser, server, a);
  const B = await L.loggedIn(browser, server, b);
  const C = await L.loggedIn(browser, server, c);
  for (const p of [A, B, C]) await assertConv(p.page);
  await A.page.waitForSelector('#new-group:not([hidden])');
  const gid = await createGroup(A.page, 'Ticks', [b, c]);
  await A.page.waitForSelector('#conv-sub:text-is("3 members")');
  await receiptsReady(A.page);
  await B.page.click(groupItem(gid));
  await B.page.waitForSelector('#conv-title:text-is("Ticks")');
  await C.page.waitForSelector(groupItem(gid));

  await L.sendText(A.page, 'hello both');
  await byAuthor(B.page, a, 'hello both').waitFor();
  await C.page.waitForSelector(`${groupItem(gid)} .badge:text-is("1")`);
  // Both have it, B has shown it, C not yet.
  await tickIs(A.page, 'hello both', 'delivered', '✓');
  await A.page.waitForSelector('li.msg.out .reads:text-is("read 1/2")');
  assert.equal(await A.page.getAttribute('li.msg.out .mark', 'aria-label'), 'delivered, read by 1 of 2');
  await L.shot(A.page, '23-group-read-1-of-2');
  await C.page.click(groupItem(gid));
  await byAuthor(C.page, a, 'hello both').waitFor();
  await tickIs(A.page, 'hello both', 'read', '✓✓');
  assert.ok(await A.page.isHidden('li.msg.out .reads'));
  // B types in the group: A and C see it, named.
  await B.page.fill('#text', 'typing in the group');
  for (const p of [A, C]) await p.page.waitForSelector(`#typing:text-is("User ${b} is typing…")`);
  await L.shot(A.page, '23-group-read');
  await L.finish([A, B, C]);
});

test('presence with --auth on: refused (ERROR DENIED) for a user with no conversation shared, nothing shown; granted once a message was', { skip: ownServerOnly }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'chat-browser-auth-'));
  for (const u of [7, 8]) {
    const add = spawnSync(L.SERVER, ['user', '--data-dir', dir, 'add', String(u)], { input: `password ${u}\n`, encoding: 'utf8' });
    assert.equal(add.status, 0, `chat-server user add: ${add.stderr}`);
  }
  const s = await L.startServer({ extra: ['--auth', 'on'], dataDir: dir });
  try {
    const B = await L.newPerson(browser, s);
    await L.login(B.page, 8, 'password 8');
    // A's ERROR frames, as they come (code, ref).
    const errors = [];
    const seen = L.watched(() => JSON.stringify(errors));
    const tap = ({ dir: d, type, frame }) => {
      if (d === 'down' && type === 0x83) {
        errors.push([frame.readUInt16BE(9), Number(frame.readBigUInt64BE(11))]);
        seen.wake();
      }
      return true;
    };
    const A = await L.newPerson(browser, s, { tap });
    await L.login(A.page, 7, 'password 7');
    await L.openConv(A.page, 8);
    await seen.until(() => errors, (e) => e.some(([code, ref]) => code === 15 && ref === 8), 'ERROR DENIED for user 8');
    assert.equal(await A.page.locator('#conv-list .presence').count(), 0, 'nothing shown for a refused user');
    assert.ok(await A.page.isHidden('#conv-sub'));
    assert.ok(await A.page.isHidden('#alert'), 'not shown as an error');
    await L.shot(A.page, '24-presence-denied');
    // A message accepted between the two: asked again, and granted.
    await L.sendText(A.page, 'now we share a conversation');
    await A.page.waitForSelector('#conv-list [data-peer="8"] .presence[data-state="online"]');
    await A.page.waitForSelector('#conv-sub[data-presence="online"]');
    await L.finish([A, B]);
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('receipts are exact: of two messages written at once, a READ of the first never ticks the second, also after a reload', async () => {
  const [a, b] = ids(2);
  // B: a device with SIGNALS whose frames the test writes: it reads
  // (RECEIPT READ) exactly up to the id the test says.
  const B = await L.rawMember(server.tcpPort, b, 'raw', { signals: true });
  const A = await L.loggedIn(browser, server, a, b);
  await receiptsReady(A.page);
  // Every value data-receipt takes on A's messages (each change's old
  // value, and the value now): a ✓✓ shown for a moment counts.
  await A.page.evaluate(() => {
    window.chatHeld = [];
    new MutationObserver((rs) => {
      for (const r of rs) window.chatHeld.push([r.target.querySelector('.text')?.textContent, r.oldValue || '']);
    }).observe(document.getElementById('messages'), { subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-receipt'] });
  });
  const held = (t) => A.page.evaluate((x) => {
    const li = [...document.querySelectorAll('li.msg.out')].find((e) => e.querySelector('.text')?.textContent === x);
    return [...window.chatHeld.filter(([text]) => text === x).map(([, v]) => v), li?.dataset.receipt || ''];
  }, t);
  const shown = (t) => A.page.evaluate((x) => {
    const li = [...document.querySelectorAll('li.msg.out')].find((e) => e.querySelector('.text')?.textContent === x);
    return { msgId: li?.dataset.msgId, after: li?.dataset.after, receipt: li?.dataset.receipt || '' };
  }, t);

  // Both written in one task of the page: the second is stored (with the
  // highest id known then) before anything comes back for the first, so
  // both have the same `after`. A mark between their ids is above it: the
  // rule of before POSTED ("a mark above `after` covers it") ticks both.
  const texts = ['first of two', 'second of two'];
  await A.page.evaluate((ts) => {
    const ta = document.getElementById('text');
    for (const t of ts) {
      ta.value = t;
      ta.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    }
  }, texts);
  const [m1, m2] = await B.until(B.msgs, (l) => l.length === 2, 'both messages');
  assert.deepEqual([m1.text, m2.text, m1.sender, m2.sender], [...texts, a, a]);
  assert.ok(m1.id < m2.id);
  // B's device has both (without ACKS, once written to it): ✓ on each.
  await tickIs(A.page, texts[0], 'delivered', '✓');
  await tickIs(A.page, texts[1], 'delivered', '✓');
  // Each shows the id the server gave it (POSTED), the same as B's MSGs.
  const [s1, s2] = [await shown(texts[0]), await shown(texts[1])];
  assert.deepEqual([s1.msgId, s2.msgId], [String(m1.id), String(m2.id)], 'the ids POSTED gave');
  assert.equal(s1.after, s2.after, 'written at once: the same id known');
  assert.ok(BigInt(s2.after) < m1.id, 'a READ of the first alone would tick the second by `after`');

  // B shows the first only, then types: A ticks the first ✓✓, and shows
  // the typing, which B sent after its READ: everything before it came.
  B.read(a, m1.id);
  B.typing(a, 1);
  await tickIs(A.page, texts[0], 'read', '✓✓');
  await A.page.waitForSelector(`#typing:text-is("User ${b} is typing…")`);
  // (a value may be set again unchanged: a record per set)
  const second = await held(texts[1]);
  assert.deepEqual([second[0], second.at(-1)], ['', 'delivered'], 'the second: ✓ now');
  assert.ok(!second.includes('read'), `the second: never ✓✓ (${second})`);
  assert.equal(await A.page.getAttribute(`li.msg.out[data-msg-id="${m2.id}"] .mark`, 'aria-label'), 'delivered');
  await L.shot(A.page, '25-receipts-exact');

  // After a reload the ids come from the page's store, the marks again
  // from the server (QUERY, END): still exact.
  await A.page.reload();
  await A.page.waitForSelector('#status[data-state=online]');
  await A.page.waitForSelector(`#conv-title:text-is("User ${b}")`);
  await receiptsReady(A.page);
  await tickIs(A.page, texts[0], 'read', '✓✓');
  assert.deepEqual(await shown(texts[1]), { msgId: String(m2.id), after: s2.after, receipt: 'delivered' }, 'after a reload');

  // B shows the second too: ✓✓.
  B.read(a, m2.id);
  await tickIs(A.page, texts[1], 'read', '✓✓');
  B.close();
  await L.finish([A]);
});
