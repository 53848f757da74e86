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
  // A's message carries the mark once the server acknowledged it.
  await A.page.waitForSelector(`${SENT} .mark:text-is("✓")`);

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
    assert.deepEqual(got.find((m) => m.text === toCli), { from: p, type: 'text', text: toCli });
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

test('a reload in the middle of sending: nothing half-sent, the rest resent in order', async () => {
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
    const all = await listener.waitFor((got) => sent.every((s) => got.some((m) => matches(m, s))), 'all five messages');
    // Whole or not at all: every message received is one that was sent.
    for (const m of all) {
      assert.equal(m.from, a);
      assert.ok(sent.some((s) => matches(m, s)), `received something never sent: ${JSON.stringify(m)}`);
    }
    // In order: the first copy of each comes in the order they were sent
    // (copies are allowed: at least once, never exactly once).
    const firsts = sent.map((s) => all.findIndex((m) => matches(m, s)));
    assert.deepEqual(firsts, [...firsts].sort((x, y) => x - y), `first arrivals ${firsts}`);
    console.log(`# reload: ${pendingBefore} of 5 unacknowledged at the reload, ${all.length} frames received`);
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
  assert.equal(await focused(), 'text');
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
