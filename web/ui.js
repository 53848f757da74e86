// ui.js -- what the page's modules share of the DOM: lookups, building
// elements, the alert lines at the top, user ids typed by people.

import { isUserId } from './proto.js';

const ALERTS_MAX = 4; // error lines shown at once

export const $ = (id) => document.getElementById(id);

// An element: props sets class, text, data-* and aria-* attributes, or
// properties; null and undefined children are left out.
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

export function showAlert(text) {
  const list = $('alert-list');
  list.append(el('li', { text }));
  while (list.children.length > ALERTS_MAX) list.firstElementChild.remove();
  $('alert').hidden = false;
}

export function clearAlerts() {
  $('alert-list').replaceChildren();
  $('alert').hidden = true;
}

// A user id as typed: its number, or 0 when it is not one (1..2^32-1).
export function parseUserId(s) {
  const t = String(s).trim();
  if (!/^[0-9]{1,10}$/.test(t)) return 0;
  const n = Number(t);
  return isUserId(n) ? n : 0;
}

// User ids typed as a list (spaces or commas between them): {ids} without
// duplicates, or {bad: the first word that is not one}.
export function parseUserIds(s) {
  const words = String(s).split(/[\s,]+/).filter((w) => w !== '');
  const ids = [];
  for (const w of words) {
    const n = parseUserId(w);
    if (!n) return { bad: w };
    if (!ids.includes(n)) ids.push(n);
  }
  return { ids };
}

// How a user is named on the page ("You" for this user when `you`).
export function userName(user, me, you = 'You') {
  return user === me ? you : `User ${user}`;
}

// Names in a sentence: "A", "A and B", "A, B and C".
export function nameList(names) {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}
