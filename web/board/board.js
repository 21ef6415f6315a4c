// The order board: one column per open status, live over the WebSocket, with buttons for the
// transitions each order allows. Cards move at once on an event; the full order is then fetched
// (for its lines and version). A "resync" or a reconnect without replay reloads the whole board.

import { api, get, money, statusWord, setCurrency } from '../assets/api.js';
import { LiveFeed } from '../assets/ws.js';
import { h, fill, $, say, requireUser, userBox, modal, busy, ago, reloginOn401 } from '../assets/ui.js';

const COLS = ['pending', 'confirmed', 'preparing', 'ready', 'out_for_delivery'];
const DONE = new Set(['completed', 'delivered']);
const ROLES = ['staff', 'cashier', 'manager', 'admin'];
const main = $('#main');

const state = {
  orders: new Map(), // id → order (full, or the event summary until fetched)
  counts: Object.fromEntries(COLS.map((c) => [c, 0])),
  done: [], // recent completed/delivered, newest first
  fresh: new Set(), // ids to highlight
};

/** Next statuses an order may take (docs/api.md, Lifecycle). */
function nextSteps(o) {
  switch (o.status) {
    case 'pending': return ['confirmed', 'cancelled'];
    case 'confirmed': return ['preparing', 'cancelled'];
    case 'preparing': return ['ready', 'cancelled'];
    case 'ready': return [o.fulfilment === 'delivery' ? 'out_for_delivery' : 'completed', 'cancelled'];
    case 'out_for_delivery': return ['delivered'];
    default: return [];
  }
}

// ---- loading ----
let loading = null;
async function loadBoard() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const b = await get('/orders/board');
      state.orders.clear();
      for (const c of COLS) {
        const col = (b.columns && b.columns[c]) || { count: 0, orders: [] };
        state.counts[c] = col.count;
        for (const o of col.orders) state.orders.set(o.id, o);
      }
      state.done = (b.recent_done || []).slice(0, 50);
      const any = [...state.orders.values()][0];
      if (any && any.currency) setCurrency(any.currency);
      render();
    } catch (e) {
      say(`Could not load the board: ${e.message}`, 'error');
    } finally {
      loading = null;
    }
  })();
  return loading;
}

let refetchTimer = null;
function refetchSoon() {
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(loadBoard, 800);
}

/** Applies what we know about an order (an event summary or a full order). */
function apply(o, { isNew = false } = {}) {
  const prev = state.orders.get(o.id);
  if (prev && prev.updated_at && o.updated_at && Date.parse(prev.updated_at) > Date.parse(o.updated_at)) return prev;
  const merged = prev ? { ...prev, ...o } : o;
  if (prev && prev.status !== o.status) {
    if (COLS.includes(prev.status)) state.counts[prev.status] = Math.max(0, state.counts[prev.status] - 1);
  }
  if (!prev && !isNew && COLS.includes(o.status)) {
    // Moved from a place this board did not show (beyond the first 100): counts need the server.
    refetchSoon();
  }
  if (COLS.includes(o.status)) {
    if (!prev || prev.status !== o.status) state.counts[o.status] += 1;
    state.orders.set(o.id, merged);
  } else {
    state.orders.delete(o.id);
    if (DONE.has(o.status) && !state.done.some((d) => d.id === o.id)) state.done.unshift(merged);
    state.done = state.done.slice(0, 50);
  }
  return merged;
}

async function refresh(id) {
  try {
    const full = await get(`/orders/${id}`);
    if (full.currency) setCurrency(full.currency);
    apply(full);
    render();
  } catch (e) {
    if (e.status === 404) { state.orders.delete(id); render(); }
  }
}

function onEvent(f) {
  if (f.type === 'stock.low' && f.product) {
    say(`Low stock: ${f.product.name} (${f.product.stock_on_hand} left)`, 'info', 10000);
    return;
  }
  if (!f.order || (f.type !== 'order.created' && f.type !== 'order.updated')) return;
  const isNew = f.type === 'order.created';
  apply(f.order, { isNew });
  // Till sales pass through "pending" for an instant on their way to "completed": no fanfare for them.
  if (isNew && COLS.includes(f.order.status) && f.order.fulfilment !== 'in_store') {
    state.fresh.add(f.order.id);
    setTimeout(() => { state.fresh.delete(f.order.id); render(); }, 8000);
    beep();
  }
  render();
  refresh(f.order.id);
}

// ---- actions ----
async function move(o, to, button) {
  if (to === 'cancelled') {
    const d = modal(`Cancel order #${o.number}?`, h('div.modal-body',
      h('p', 'The customer will see it as cancelled and any stock goes back on the shelf.'),
      h('div.row',
        h('button#confirm-cancel.btn.danger.big', { type: 'button', onclick: () => { d.close(); doMove(o, to, button); } }, 'Yes, cancel it'),
        h('button.btn.big', { type: 'button', onclick: () => d.close() }, 'Keep it'))));
    $('#confirm-cancel', d).focus();
    return;
  }
  await doMove(o, to, button);
}

async function doMove(o, to, button) {
  await busy(button, async () => {
    try {
      let version = o.version;
      if (version === undefined) version = (await get(`/orders/${o.id}`)).version;
      const updated = await api('POST', `/orders/${o.id}/transitions`, { body: { to }, ifMatch: version });
      apply(updated);
      render();
      focusAfterMove(updated);
    } catch (e) {
      if (e.code === 'precondition_failed') say(`Order #${o.number} was changed by someone else; the board has been refreshed.`, 'error');
      else say(`Order #${o.number}: ${e.message}`, 'error');
      refresh(o.id);
    }
  });
}

function focusAfterMove(o) {
  const card = document.querySelector(`[data-order="${o.id}"] .actions button`);
  if (card) card.focus();
}

// ---- sound ----
let audio = null;
let soundOn = localStorage.getItem('board.sound') === 'on';
function beep() {
  if (!soundOn || !audio) return;
  try {
    const t = audio.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.3, t + i * 0.18 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.18 + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + i * 0.18);
      osc.stop(t + i * 0.18 + 0.17);
    }
  } catch { /* no audio device */ }
}
function setupSound() {
  const btn = $('#sound');
  btn.hidden = false;
  const show = () => {
    btn.setAttribute('aria-pressed', String(soundOn));
    btn.textContent = soundOn ? 'Sound on' : 'Sound off';
  };
  // Browsers allow audio only after a click; the toggle is that click.
  const unlock = () => {
    if (!audio && window.AudioContext) audio = new AudioContext();
    if (audio && audio.state === 'suspended') audio.resume();
  };
  btn.addEventListener('click', () => {
    soundOn = !soundOn;
    localStorage.setItem('board.sound', soundOn ? 'on' : 'off');
    if (soundOn) { unlock(); beep(); }
    show();
  });
  document.addEventListener('pointerdown', () => { if (soundOn) unlock(); }, { once: true });
  show();
}

// ---- rendering ----
const FULFIL = { pickup: 'Pickup', delivery: 'Delivery', in_store: 'In store' };
const PAY = { unpaid: ['Unpaid', 'warn'], partially_paid: ['Part paid', 'warn'], paid: ['Paid', 'ok'], partially_refunded: ['Part refunded', ''], refunded: ['Refunded', ''] };

function card(o) {
  const [payWord, payKind] = PAY[o.payment_status] || [o.payment_status || '', ''];
  const lines = o.lines || [];
  return h(`li.order-card${state.fresh.has(o.id) ? '.fresh' : ''}`, { dataset: { order: o.id, number: o.number } },
    h('article', { 'aria-labelledby': `o-${o.id}` },
      h('h3', h('span', { id: `o-${o.id}` }, `#${o.number}`), h('span.num', money(o.total_cents, o.currency))),
      h('div.meta',
        state.fresh.has(o.id) ? h('span.pill.warn', 'New') : null,
        h('span.pill', FULFIL[o.fulfilment] || o.fulfilment),
        h('span.pill', o.channel === 'online' ? 'Online' : 'Till'),
        payWord ? h(`span.pill${payKind ? `.${payKind}` : ''}`, payWord) : null,
        h('span.muted', { title: o.created_at || '' }, o.created_at ? ago(o.created_at) : '')),
      lines.length ? h('ul.lines', lines.slice(0, 8).map((l) => h('li', `${l.quantity} × ${l.name}`)),
        lines.length > 8 ? h('li.muted', `and ${lines.length - 8} more`) : null) : null,
      o.delivery_address ? h('p.addr', `Deliver to: ${o.delivery_address}`) : null,
      o.note ? h('p.addr', `Note: ${o.note}`) : null,
      h('div.actions', nextSteps(o).map((to) => h(`button.btn.small${to === 'cancelled' ? '.danger' : '.primary'}`, {
        type: 'button', dataset: { to },
        onclick: (e) => move(state.orders.get(o.id) || o, to, e.currentTarget),
      }, to === 'cancelled' ? 'Cancel' : statusWord(to), h('span.sr-only', ` order ${o.number}`))))));
}

function render() {
  const active = document.activeElement;
  const keep = active && active.closest ? [active.closest('[data-order]')?.dataset.order, active.dataset.to] : null;
  const byStatus = Object.fromEntries(COLS.map((c) => [c, []]));
  for (const o of state.orders.values()) if (byStatus[o.status]) byStatus[o.status].push(o);
  for (const c of COLS) byStatus[c].sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
  fill(main,
    h('h1.sr-only', 'Order board'),
    h('div.board-cols', COLS.map((c) => h(`section.col#col-${c}`, { 'aria-labelledby': `h-${c}`, dataset: { status: c } },
      h('h2', { id: `h-${c}` }, statusWord(c), h('span.count', { 'aria-label': `${state.counts[c]} orders` }, String(state.counts[c]))),
      byStatus[c].length ? h('ol', byStatus[c].map(card)) : h('p.muted.center', 'Nothing here'),
      state.counts[c] > byStatus[c].length ? h('p.muted.center', `and ${state.counts[c] - byStatus[c].length} more`) : null))),
    h('section.done-list.card', { 'aria-labelledby': 'h-done' },
      h('h2#h-done', 'Recently done'),
      state.done.length
        ? h('ol', state.done.slice(0, 20).map((o) => h('li.pill.ok', `#${o.number} ${statusWord(o.status)}`)))
        : h('p.muted', 'No completed orders yet.')));
  if (keep && keep[0]) {
    const again = document.querySelector(`[data-order="${keep[0]}"] button[data-to="${keep[1]}"]`)
      || document.querySelector(`[data-order="${keep[0]}"] button`);
    if (again) again.focus();
  }
}

// ---- start ----
async function start() {
  reloginOn401();
  const user = await requireUser(main, { roles: ROLES, title: 'Sign in to the order board', hint: 'Staff, cashiers, managers and admins.' });
  fill($('#user'), userBox(user));
  setupSound();
  render();
  const pill = $('#live');
  const feed = new LiveFeed({
    onEvent,
    onSync: () => loadBoard(),
    onStatus: (s) => {
      const words = { connecting: ['Connecting…', 'warn'], live: ['Live', 'ok'], offline: ['Reconnecting…', 'bad'], 'signed-out': ['Signed out', 'bad'] };
      const [w, k] = words[s] || [s, 'warn'];
      pill.textContent = w;
      pill.className = `pill ${k}`;
      if (s === 'signed-out') location.reload();
    },
  });
  feed.start();
  await loadBoard();
  // Ages ("3 min ago") stay current.
  setInterval(() => { if (!document.querySelector('dialog[open]')) render(); }, 30000);
}

start().catch((e) => say(e.message || String(e), 'error', 0));
