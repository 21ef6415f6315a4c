// Till web UI: the one way pages talk to the API.
// Cookie session + X-CSRF-Token on unsafe methods, JSON in and out, and every failure turned into
// an ApiError whose `message` is plain words a cashier understands (never a raw JSON dump).

const BASE = '/api/v1';
const CSRF_KEY = 'till.csrf';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const session = {
  get csrf() {
    try { return sessionStorage.getItem(CSRF_KEY); } catch { return null; }
  },
  set csrf(v) {
    try {
      if (v) sessionStorage.setItem(CSRF_KEY, v); else sessionStorage.removeItem(CSRF_KEY);
    } catch { /* storage disabled: the cookie still works for reads */ }
  },
  user: null,
};

/** A random UUID, also outside secure contexts (plain-http LAN tills). */
export function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Field names as a person would say them. */
const FIELD_WORDS = {
  email: 'Email', password: 'Password', name: 'Name', phone: 'Phone', role: 'Role',
  sku: 'SKU', barcode: 'Barcode', price_cents: 'Price', tax_rate_bp: 'Tax rate',
  low_stock_threshold: 'Low-stock level', category_id: 'Category', description: 'Description',
  delta: 'Quantity change', reason: 'Reason', note: 'Note', lines: 'Items',
  quantity: 'Quantity', discount: 'Discount', 'discount.value_bp': 'Discount',
  'discount.amount_cents': 'Discount', delivery_address: 'Delivery address',
  fulfilment: 'Pickup or delivery', amount_cents: 'Amount', tendered_cents: 'Cash tendered',
  method: 'Payment method', from: 'From date', to: 'To date', code: 'Code', q: 'Search',
};

export function fieldWord(f) {
  if (FIELD_WORDS[f]) return FIELD_WORDS[f];
  const m = /^lines\[(\d+)\]/.exec(f);
  if (m) return `Item ${Number(m[1]) + 1}`;
  return f.replace(/[_.]/g, ' ').replace(/^\w/, (c) => c.toUpperCase());
}

const STATUS_WORDS = {
  pending: 'New', confirmed: 'Confirmed', preparing: 'Preparing', ready: 'Ready',
  out_for_delivery: 'Out for delivery', delivered: 'Delivered', completed: 'Completed',
  cancelled: 'Cancelled',
};
export const statusWord = (s) => STATUS_WORDS[s] || s;

export class ApiError extends Error {
  constructor(status, code, message, details = null, requestId = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
  /** True when trying the same request again later may work (nothing was decided). */
  get transient() {
    return this.status === 0 || this.status === 429 || this.status === 503 || this.status === 502 ||
      this.status === 504 || this.code === 'idempotency_key_in_use';
  }
  /** Field errors of a 422 validation_failed, {field: [msg…]}. */
  get fields() {
    return (this.details && this.details.fields) || {};
  }
}

/** Plain words for an error body from the API. */
export function friendlyMessage(status, code, serverMessage, details, retryAfter) {
  switch (code) {
    case 'network': return "Can't reach the server. Check the network connection.";
    case 'invalid_credentials': return 'Wrong email or password.';
    case 'unauthorized': return 'Please sign in again.';
    case 'csrf_failed': return 'Your session has expired. Please sign in again.';
    case 'forbidden': return "Your account isn't allowed to do that. Ask a manager.";
    case 'not_found': return "That wasn't found. It may have been removed.";
    case 'insufficient_stock': {
      const n = details && details.lines ? details.lines.length : 0;
      return n > 1 ? `Not enough stock for ${n} items.` : 'Not enough stock for this item.';
    }
    case 'invalid_transition':
      if (details && details.from && details.to) {
        return `This order can't go from ${statusWord(details.from)} to ${statusWord(details.to)}.`;
      }
      return "This order can't be moved that way.";
    case 'already_exists': {
      const f = details && details.field;
      return f ? `That ${fieldWord(f).toLowerCase()} is already in use.` : 'That already exists.';
    }
    case 'idempotency_key_in_use': return 'Still working on the previous attempt. Wait a moment.';
    case 'idempotency_key_reused': return 'This sale was already sent with different details.';
    case 'conflict':
      // A paid order that cannot be cancelled: the server's reason, and how much is at stake.
      if (serverMessage && details && details.refundable_cents > 0) {
        return `${serverMessage} (${money(details.refundable_cents)} to refund)`;
      }
      return serverMessage || 'That conflicts with the current state. Reload and try again.';
    case 'precondition_failed': return 'Someone else changed this meanwhile. Reload to see their changes.';
    case 'payload_too_large': return 'That is too large to send.';
    case 'overpayment': return "That's more than the amount still due.";
    case 'over_refund': return "That's more than can be refunded.";
    case 'validation_failed': {
      const fields = (details && details.fields) || {};
      const parts = Object.entries(fields).map(([f, msgs]) => `${fieldWord(f)} ${[].concat(msgs).join(', ')}`);
      return parts.length ? `Please check: ${parts.join('; ')}.` : 'Please check the highlighted fields.';
    }
    case 'rate_limited':
      return retryAfter ? `Too many attempts. Try again in ${retryAfter} seconds.` : 'Too many attempts. Try again shortly.';
    case 'service_unavailable': return 'The system is busy or restarting. Try again in a moment.';
    case 'internal': return 'Something went wrong on our side. Try again; if it keeps happening, tell a manager.';
    case 'bad_request':
    case 'unsupported_media_type':
    case 'idempotency_key_required':
      return 'The app sent a request the server did not understand. Reload the page.';
    default:
      if (status >= 500) return 'Something went wrong on our side. Try again in a moment.';
      return serverMessage || 'That did not work. Try again.';
  }
}

let onUnauthorized = null;
/** Called (once per failure) when the API says the session is gone. */
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

/**
 * Calls the API. Returns the parsed JSON body (or null for 204).
 * opts: {body, form (FormData), file + contentType (a raw upload), idempotencyKey, ifMatch, query,
 *        raw (return {data, status, headers, replayed})}
 */
export async function api(method, path, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  } else if (opts.form !== undefined) {
    init.body = opts.form; // FormData: the browser sets multipart/form-data and its boundary
  } else if (opts.file !== undefined) {
    headers['Content-Type'] = opts.contentType || 'application/octet-stream';
    init.body = opts.file; // a File or Blob, sent as it is (e.g. text/csv)
  }
  if (UNSAFE.has(method) && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  if (opts.idempotencyKey) headers['Idempotency-Key'] = opts.idempotencyKey;
  if (opts.ifMatch !== undefined && opts.ifMatch !== null) headers['If-Match'] = `"${opts.ifMatch}"`;
  let url = BASE + path;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const s = q.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch {
    throw new ApiError(0, 'network', friendlyMessage(0, 'network'));
  }
  let data = null;
  const text = await resp.text().catch(() => '');
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    const code = e.code || (resp.status >= 500 ? 'internal' : 'unknown');
    const retryAfter = Number(resp.headers.get('Retry-After')) || null;
    const err = new ApiError(resp.status, code,
      friendlyMessage(resp.status, code, e.message, e.details, retryAfter),
      e.details || null, e.request_id || resp.headers.get('X-Request-Id'), retryAfter);
    if (resp.status === 401 && code === 'unauthorized' && session.user && onUnauthorized) onUnauthorized(err);
    throw err;
  }
  if (opts.raw) {
    return { data, status: resp.status, headers: resp.headers, replayed: resp.headers.get('Idempotent-Replayed') === 'true' };
  }
  return data;
}

export const get = (path, query) => api('GET', path, { query });
export const post = (path, body, opts = {}) => api('POST', path, { ...opts, body });
export const patch = (path, body, opts = {}) => api('PATCH', path, { ...opts, body });
export const del = (path, opts = {}) => api('DELETE', path, opts);

// ---- auth ----

/** The signed-in user, or null. Restores the CSRF token for this tab. */
export async function currentUser() {
  try {
    const me = await api('GET', '/auth/me');
    if (me.csrf_token) session.csrf = me.csrf_token;
    session.user = me.user;
    return me.user;
  } catch (e) {
    if (e.status === 401) { session.csrf = null; session.user = null; return null; }
    throw e;
  }
}

export async function login(email, password) {
  const r = await api('POST', '/auth/login', { body: { email, password } });
  session.csrf = r.csrf_token;
  session.user = r.user;
  return r.user;
}

export async function logout() {
  try { await api('POST', '/auth/logout'); } catch { /* gone already */ }
  try { sessionStorage.removeItem('till.user'); } catch { /* ignore */ }
  session.csrf = null;
  session.user = null;
}

// ---- money ----

let currency = (() => { try { return localStorage.getItem('till.currency') || 'USD'; } catch { return 'USD'; } })();
/** Remember the deployment's currency (orders echo it). */
export function setCurrency(c) {
  if (!c || c === currency) return;
  currency = c;
  try { localStorage.setItem('till.currency', c); } catch { /* ignore */ }
}
const formatters = new Map();
/** 1234 → "$12.34". Integer cents in, never floats in the arithmetic. */
export function money(cents, cur = currency) {
  if (cents === null || cents === undefined || Number.isNaN(Number(cents))) return '—';
  let f = formatters.get(cur);
  if (!f) {
    try {
      f = new Intl.NumberFormat(undefined, { style: 'currency', currency: cur });
    } catch {
      f = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD' });
    }
    formatters.set(cur, f);
  }
  const n = BigInt(Math.trunc(Number(cents)));
  const neg = n < 0n;
  const a = neg ? -n : n;
  // Format from an exact decimal string so large amounts never pick up float noise.
  const s = `${neg ? '-' : ''}${a / 100n}.${String(a % 100n).padStart(2, '0')}`;
  return f.format(s);
}

/** "12.34" / "12,34" / "$12" → 1234 cents; null when it is not a plain amount. */
export function parseMoney(input) {
  const s = String(input ?? '').trim().replace(/[^\d.,-]/g, '').replace(',', '.');
  const m = /^(\d*)(?:\.(\d{0,2}))?$/.exec(s);
  if (!m || (m[1] === '' && !m[2])) return null;
  const whole = m[1] === '' ? 0 : Number(m[1]);
  const frac = Number((m[2] || '').padEnd(2, '0'));
  if (!Number.isSafeInteger(whole * 100 + frac)) return null;
  return whole * 100 + frac;
}

/** Cents as an editable "12.34". */
export const centsToInput = (c) => (c === null || c === undefined ? '' : `${Math.trunc(c / 100)}.${String(Math.abs(c % 100)).padStart(2, '0')}`);

/** "8.25" (percent) → 825 basis points; null when invalid. */
export function parsePercentBp(input) {
  const s = String(input ?? '').trim().replace('%', '').replace(',', '.');
  const m = /^(\d{1,3})(?:\.(\d{0,2}))?$/.exec(s);
  if (!m) return null;
  const bp = Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'));
  return bp <= 10000 ? bp : null;
}
export const bpToPercent = (bp) => `${Math.trunc(bp / 100)}${bp % 100 ? `.${String(bp % 100).padStart(2, '0').replace(/0$/, '')}` : ''}`;

/** Every page of a paginated list (bounded). */
export async function allPages(path, query = {}, max = 10) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < max; i += 1) {
    const page = await get(path, { ...query, limit: 100, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return items;
}
