// The till's outbox. Every sale is written here first, then sent: the order and each payment carry
// an Idempotency-Key generated once, when the sale is made, so sending again after a network drop
// (even from another tab, or after a reload) replays the server's first answer instead of charging twice.

import { api, ApiError } from '../assets/api.js';

const KEY = 'till.queue.v1';
const RETRY_MS = 5000;

function load() {
  try { return JSON.parse(localStorage.getItem(KEY) || '[]'); } catch { return []; }
}
function save(list) {
  localStorage.setItem(KEY, JSON.stringify(list));
}
function update(id, fn) {
  const list = load();
  const i = list.findIndex((s) => s.id === id);
  if (i < 0) return null;
  fn(list[i]);
  save(list);
  return list[i];
}

/** Runs fn holding a lock shared by every tab, so two tabs never send the same sale at once. */
async function exclusive(fn) {
  if (navigator.locks && navigator.locks.request) return navigator.locks.request('till-queue', fn);
  return fn();
}

export class SaleQueue {
  constructor(userId, onChange) {
    this.userId = userId;
    this.onChange = onChange || (() => {});
    this.timer = null;
    this.running = null;
    /** Sale ids whose outcome a screen is waiting for; others are dropped once sent. */
    this.watching = new Set();
    window.addEventListener('online', () => this.flush());
    window.addEventListener('storage', (e) => { if (e.key === KEY) this.onChange(this.list()); });
  }

  /** Sales not yet fully sent (this user's and others'). */
  list() { return load(); }
  pending() { return load().filter((s) => s.state === 'queued'); }

  /** Adds a sale: {id, order_key, order_body, payments:[{key, body}], preview, created_at}. */
  add(sale) {
    const list = load();
    list.push({ ...sale, user_id: this.userId, state: 'queued', order: null, paid: [], error: null });
    save(list);
    this.onChange(load());
  }

  remove(id) {
    save(load().filter((s) => s.id !== id));
    this.onChange(load());
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.pending().length) this.timer = setTimeout(() => this.flush(), RETRY_MS);
  }

  /** Sends everything that can be sent now. Resolves when this pass is over. */
  flush() {
    // A pass already under way may have started before the newest sale was added: go again after it.
    if (this.running) return this.running.then(() => this.flush());
    this.running = exclusive(() => this.pass()).finally(() => {
      this.running = null;
      this.onChange(load());
      this.schedule();
    });
    return this.running;
  }

  async pass() {
    for (const sale of load()) {
      if (sale.state !== 'queued' || sale.user_id !== this.userId) continue;
      const ok = await this.send(sale.id);
      if (!ok) break; // the network or server is down: keep order, try later
    }
    const list = load();
    const kept = list.filter((s) => s.state !== 'done' || this.watching.has(s.id));
    if (kept.length !== list.length) save(kept);
  }

  /** Sends one sale as far as possible. false = stopped by a transient failure. */
  async send(id) {
    let sale = load().find((s) => s.id === id);
    if (!sale || sale.state !== 'queued') return true;
    try {
      if (!sale.order) {
        const order = await api('POST', '/orders', { body: sale.order_body, idempotencyKey: sale.order_key });
        sale = update(id, (s) => { s.order = order; });
      }
      for (let i = sale.paid.length; i < sale.payments.length; i += 1) {
        const p = sale.payments[i];
        const r = await api('POST', `/orders/${sale.order.id}/payments`, { body: p.body, idempotencyKey: p.key });
        sale = update(id, (s) => { s.paid.push(r.payment); s.order = r.order; });
      }
      update(id, (s) => { s.state = 'done'; });
      return true;
    } catch (e) {
      if (!(e instanceof ApiError) || e.transient || e.status === 401 || e.code === 'csrf_failed') {
        update(id, (s) => { s.error = e.message; });
        return false;
      }
      // The server decided: this sale cannot go through as it is. Nothing more is retried.
      update(id, (s) => { s.state = 'failed'; s.error = e.message; s.error_code = e.code; s.error_details = e.details; });
      return true;
    }
  }

  /** Takes a finished sale out of the queue and returns it. */
  take(id) {
    const sale = load().find((s) => s.id === id);
    if (sale && sale.state === 'done') this.remove(id);
    return sale;
  }
}
