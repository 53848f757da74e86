// groups.js -- group conversations on the page (docs/PROTOCOL.md, "Groups"):
// what this user knows of its groups, the form that creates one, the
// group's panel (members; add, remove and rename for admins; leave), and
// the server's GROUPS events turned into state and into lines in the
// conversation. The session (conn.js) carries the requests; the history
// store (store.js) keeps each group's conversation record.
//
// The server is the authority: a LIST at every WELCOME, and again after
// every event (coalesced: one at a time, one more if events came
// meanwhile), replaces what is known; an event changes the state at once
// for what it says plainly (a new name, this user added, removed or gone)
// and the LIST that follows brings the rest (member counts, who is admin
// once the last admin left).

import * as P from './proto.js';
import { groupKey, keyGroup } from './store.js';
import { $, el, nameList, parseUserIds, userName } from './ui.js';

export class Groups {
  // app: the page's state ({user, conn, store, peer}); hooks: refresh()
  // (the conversation list changed), line(key, text) (keep and show a
  // line about the group), open(key) (open a conversation), head() (the
  // open conversation's header and composer changed).
  constructor(app, hooks) {
    this.app = app;
    this.hooks = hooks;
    this.info = new Map(); // group id -> {name, admin, members, left}
    this.listing = null; // the LIST on its way (a promise), or null
    this.listAgain = false; // events came while it was on its way
    this.panelFor = 0; // the group whose panel is open, 0 = none
    this.supported = false; // this connection's server answers GROUP
  }

  // ------------------------------------------------------------- state

  // At login: the groups the store kept (conversation records).
  load(convs) {
    this.info.clear();
    this.supported = false;
    for (const c of convs) {
      const gid = keyGroup(c.peer);
      if (gid) this.info.set(gid, { name: c.name || '', admin: !!c.admin, members: c.members || 0, left: !!c.left });
    }
    $('new-group').hidden = true;
  }

  get(gid) {
    return this.info.get(gid);
  }

  label(gid) {
    const g = this.info.get(gid);
    return g && g.name ? g.name : `Group ${gid}`;
  }

  // Change what is known of group gid (fields of its record) and keep it.
  set(gid, fields) {
    const g = { ...(this.info.get(gid) || { name: '', admin: false, members: 0, left: false }), ...fields };
    this.info.set(gid, g);
    const store = this.app.store;
    store.setConv(groupKey(gid), { group: gid, ...g })
      .then(() => store === this.app.store && this.hooks.refresh())
      .catch((e) => this.error(`Cannot keep the group: ${e.message}`));
    if (this.app.peer === groupKey(gid)) this.hooks.head();
    if (this.panelFor === gid) this.showPanel(gid);
  }

  // ------------------------------------------------------------ session

  // WELCOME: groups need CONV; the server says what this user's are.
  onWelcome({ conv }) {
    this.supported = conv;
    $('new-group').hidden = !conv;
    if (conv) this.list();
    if (this.panelFor) this.showPanel(this.panelFor);
    this.hooks.head();
  }

  onUnsupported(kinds) {
    if (!kinds.includes('group')) return;
    this.supported = false;
    $('new-group').hidden = true;
    this.hidePanel();
    this.hooks.head();
  }

  // Ask for LIST (sent at once: the page's first request on a connection,
  // see conn.js's onBadType), or once more after the one on its way.
  list() {
    if (this.listing) {
      this.listAgain = true;
      return;
    }
    const conn = this.app.conn;
    this.listing = conn.groupOp(P.G_LIST, 0)
      .then((a) => conn === this.app.conn && this.applyList(a.groups))
      .catch((e) => {
        if (e.why === 'refused') this.error(`Cannot list your groups: ${e.message}.`);
      })
      .finally(() => {
        this.listing = null;
        if (this.listAgain && conn === this.app.conn && conn.state === 'ready') {
          this.listAgain = false;
          this.list();
        }
      });
  }

  applyList(groups) {
    const now = new Set();
    for (const g of groups) {
      now.add(g.id);
      const was = this.info.get(g.id);
      if (!was || was.name !== g.name || was.admin !== g.admin || was.members !== g.members || was.left)
        this.set(g.id, { name: g.name, admin: g.admin, members: g.members, left: false });
    }
    // Groups this user is no longer in (removed while away, or left on
    // another device while this one was closed).
    for (const [gid, g] of this.info)
      if (!now.has(gid) && !g.left) this.set(gid, { left: true, admin: false });
  }

  // A GROUPS event: {group, what, by, users, name}.
  onEvent(ev) {
    const me = this.app.user;
    const gid = ev.group;
    const by = userName(ev.by, me);
    const whom = nameList(ev.users.map((u) => userName(u, me, 'you')));
    const concernsMe = ev.users.includes(me);
    let text;
    const fields = { name: ev.name };
    switch (ev.what) {
      case P.EV_CREATED:
        text = `${by} created the group “${ev.name}”.`;
        Object.assign(fields, { left: false, admin: ev.by === me });
        break;
      case P.EV_RENAMED:
        text = `${by} renamed the group to “${ev.name}”.`;
        break;
      case P.EV_ADDED:
        text = `${by} added ${whom}.`;
        if (concernsMe) fields.left = false;
        break;
      case P.EV_REMOVED:
        text = `${by} removed ${whom}.`;
        if (concernsMe) Object.assign(fields, { left: true, admin: false });
        break;
      default: // EV_LEFT
        text = `${by} left the group.`;
        if (ev.by === me) Object.assign(fields, { left: true, admin: false });
    }
    this.set(gid, fields);
    this.hooks.line(groupKey(gid), text);
    this.list();
    if (this.panelFor === gid && !this.info.get(gid).left) this.loadMembers(gid);
  }

  // ------------------------------------------------------------ requests

  // Run a group request: resolves to its answer, or to null once its
  // failure is shown as a sentence in `where` (an element's id).
  async run(what, where, send) {
    $(where).textContent = '';
    try {
      return await send(this.app.conn);
    } catch (e) {
      if (e instanceof P.ProtoError) $(where).textContent = `Cannot ${what}: ${e.message}.`;
      else $(where).textContent = `Could not ${what}: ${requestWhy(e)}`;
      return null;
    }
  }

  async create(name, users) {
    const a = await this.run('create the group', 'new-group-error',
      (conn) => conn.groupOp(P.G_CREATE, 0, { name, users }));
    if (!a) return false;
    this.set(a.group, { name, admin: true, members: 1 + users.filter((u) => u !== this.app.user).length, left: false });
    await this.hooks.open(groupKey(a.group));
    return true;
  }

  // ---------------------------------------------------------------- panel

  togglePanel(gid) {
    if (this.panelFor === gid) this.hidePanel();
    else {
      this.showPanel(gid);
      this.loadMembers(gid);
    }
  }

  hidePanel() {
    this.panelFor = 0;
    $('group-panel').hidden = true;
    $('group-toggle').setAttribute('aria-expanded', 'false');
    $('leave-confirm').hidden = true;
  }

  // Show group gid's panel as its state says (admin forms, leave).
  showPanel(gid) {
    const g = this.info.get(gid);
    if (!g || g.left || !this.supported) return this.hidePanel();
    this.panelFor = gid;
    $('group-panel').hidden = false;
    $('group-toggle').setAttribute('aria-expanded', 'true');
    for (const f of document.querySelectorAll('#group-panel .admin-only')) f.hidden = !g.admin;
    $('leave-name').textContent = this.label(gid);
    return undefined;
  }

  async loadMembers(gid) {
    const a = await this.run('list the members', 'group-error', (conn) => conn.groupOp(P.G_MEMBERS, gid));
    if (!a || this.panelFor !== gid) return;
    const g = this.info.get(gid);
    const me = this.app.user;
    const admins = a.members.filter((m) => m.admin).length;
    $('member-list').replaceChildren(...a.members.map((m) => {
      const name = m.user === me ? `User ${m.user} (you)` : `User ${m.user}`;
      const li = el('li', { class: 'member', 'data-user': String(m.user) },
        el('span', { class: 'member-name', text: name }),
        m.admin ? el('span', { class: 'tag', text: 'admin' }) : null);
      if (g && g.admin && m.user !== me) {
        const b = el('button', { type: 'button', class: 'link remove', text: 'Remove', 'aria-label': `Remove user ${m.user}` });
        b.addEventListener('click', () => this.remove(gid, m.user));
        li.append(b);
      }
      return li;
    }));
    $('member-count').textContent = `${a.members.length} ${a.members.length === 1 ? 'member' : 'members'}` +
      (admins ? `, ${admins} ${admins === 1 ? 'admin' : 'admins'}` : '');
    if (g && g.members !== a.members.length) this.set(gid, { members: a.members.length });
  }

  async add(gid, text) {
    const { ids, bad } = parseUserIds(text);
    if (bad !== undefined || !ids.length) {
      $('group-error').textContent = bad !== undefined ? `“${bad}” is not a user id (1 to 4294967295).`
        : 'Enter the user ids to add.';
      return false;
    }
    return !!(await this.run('add them', 'group-error', (conn) => conn.groupOp(P.G_ADD, gid, { users: ids })));
  }

  async remove(gid, user) {
    await this.run(`remove user ${user}`, 'group-error', (conn) => conn.groupOp(P.G_REMOVE, gid, { users: [user] }));
  }

  async rename(gid, name) {
    return !!(await this.run('rename the group', 'group-error', (conn) => conn.groupOp(P.G_RENAME, gid, { name })));
  }

  async leave(gid) {
    if (await this.run('leave the group', 'group-error', (conn) => conn.groupOp(P.G_LEAVE, gid))) {
      this.set(gid, { left: true, admin: false });
      this.hidePanel();
      $('messages').focus();
    }
  }

  error(text) {
    $('group-error').textContent = text;
  }

  // ---------------------------------------------------------------- wiring

  wire() {
    const gidOpen = () => this.panelFor;
    $('new-group-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = $('group-name').value.trim();
      const { ids, bad } = parseUserIds($('group-members').value);
      if (bad !== undefined) {
        $('new-group-error').textContent = `“${bad}” is not a user id (1 to 4294967295).`;
        return;
      }
      if (await this.create(name, ids)) {
        $('new-group-form').reset();
        $('new-group').open = false;
      }
    });
    $('add-members').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (await this.add(gidOpen(), $('add-ids').value)) $('add-ids').value = '';
    });
    $('rename-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (await this.rename(gidOpen(), $('rename-name').value.trim())) $('rename-name').value = '';
    });
    $('leave').addEventListener('click', () => {
      $('leave-confirm').hidden = false;
      $('leave-yes').focus();
    });
    $('leave-no').addEventListener('click', () => {
      $('leave-confirm').hidden = true;
      $('leave').focus();
    });
    $('leave-yes').addEventListener('click', () => this.leave(gidOpen()));
  }
}

// A failed request as the end of a sentence.
export function requestWhy(e) {
  switch (e.why) {
    case 'refused': return `${e.message}.`;
    case 'offline': return `${e.message}; try again once the page is online.`;
    case 'lost': return 'the connection was lost before the server answered; try again.';
    case 'unsupported': return 'this server does not support groups.';
    default: return `${e.message}.`;
  }
}
