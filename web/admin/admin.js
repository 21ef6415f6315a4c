// Back office (manager+): products with optimistic concurrency, stock adjustments and the
// low-stock list, the sales report with a hand-drawn SVG chart, and staff accounts (admin).

import {
  api, get, money, parseMoney, centsToInput, parsePercentBp, bpToPercent, setCurrency,
} from '../assets/api.js';
import {
  h, fill, $, say, requireUser, userBox, errorBox, showError, markFields, field, busy, modal, reloginOn401,
} from '../assets/ui.js';
import { imagesCard, pageImport } from './catalog.js';
import { pageShifts } from './shifts.js';
import { pageLocations } from './locations.js';
import { pageTransfers } from './transfers.js';
import { pageCounts } from './counts.js';
import { pageWebhooks } from './webhooks.js';

const main = $('#main');
let user = null;
let categories = [];
const CONFLICT = 'Someone else changed this product; reload to see their changes';

function tabs(current) {
  const items = [['products', 'Products'], ['import', 'Import'], ['stock', 'Stock'], ['sales', 'Sales'], ['shifts', 'Shifts'], ['locations', 'Locations'], ['transfers', 'Transfers'], ['counts', 'Counts'], ...(user.role === 'admin' ? [['staff', 'Staff'], ['webhooks', 'Webhooks']] : [])];
  return h('nav.tabs', { 'aria-label': 'Back office sections' },
    items.map(([k, label]) => h('a', { href: `#/${k}`, 'aria-current': k === current ? 'page' : null }, label)));
}

async function loadCategories() {
  try { categories = (await get('/categories')).items || []; } catch { categories = []; }
}

// =================== products ===================
async function pageProducts() {
  const q = h('input#p-q', { type: 'search', name: 'q', placeholder: 'Name, SKU or barcode', autocomplete: 'off' });
  const inactive = h('input#p-inactive', { type: 'checkbox' });
  const cat = h('select#p-cat', h('option', { value: '' }, 'All categories'), categories.map((c) => h('option', { value: c.id }, c.name)));
  const body = h('tbody');
  const more = h('button.btn', { type: 'button', hidden: true }, 'Load more');
  let cursor = null;
  let seq = 0;
  const load = async (reset) => {
    const mine = ++seq;
    if (reset) { cursor = null; }
    const page = await get('/products', {
      limit: 50, cursor, q: q.value.trim() || null, category_id: cat.value || null, include_inactive: inactive.checked ? 'true' : null,
    });
    if (mine !== seq) return;
    if (reset) body.replaceChildren();
    for (const p of page.items) body.append(productRow(p));
    if (!body.children.length) body.append(h('tr', h('td', { colspan: 6 }, h('span.muted', 'No products.'))));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  let t = null;
  q.addEventListener('input', () => { clearTimeout(t); t = setTimeout(() => load(true).catch(err), 300); });
  inactive.addEventListener('change', () => load(true).catch(err));
  cat.addEventListener('change', () => load(true).catch(err));
  more.addEventListener('click', () => busy(more, () => load(false).catch(err)));
  fill(main, tabs('products'),
    h('div.row', { style: { justifyContent: 'space-between', marginBottom: '.75rem' } },
      h('h1', 'Products'),
      h('div.row',
        h('a#export-csv.btn', { href: '/api/v1/products/export.csv', download: 'products.csv' }, 'Export CSV'),
        h('a#import-csv.btn', { href: '#/import' }, 'Import CSV'),
        h('button.btn', { type: 'button', onclick: newCategory }, 'New category'),
        h('a#new-product.btn.primary', { href: '#/products/new' }, 'New product'))),
    h('div.card',
      h('div.row', { style: { marginBottom: '.5rem' } },
        h('div.grow', field('Search', q)),
        field('Category', cat),
        h('label.check', inactive, 'Show inactive')),
      h('div.table-wrap', h('table',
        h('thead', h('tr', h('th', 'Name'), h('th', 'SKU'), h('th', 'Barcode'), h('th.num', 'Price'), h('th.num', 'Stock'), h('th', 'Status'))),
        body)),
      h('div.center', more)));
  await load(true);
}

function productRow(p) {
  const low = p.track_stock && p.stock_on_hand <= p.low_stock_threshold;
  return h(`tr${p.active ? '' : '.inactive'}`, { dataset: { sku: p.sku } },
    h('td', h('a', { href: `#/products/${p.id}` }, p.name)),
    h('td', p.sku), h('td', p.barcode || '—'),
    h('td.num', money(p.price_cents)),
    h('td.num', p.track_stock ? [String(p.stock_on_hand), low ? [' ', h('span.pill.warn', 'low')] : null] : h('span.muted', 'not tracked')),
    h('td', p.active ? h('span.pill.ok', 'Active') : h('span.pill', 'Inactive')));
}

function newCategory() {
  const err = errorBox();
  const name = h('input#cat-name', { name: 'name', required: true });
  const d = modal('New category', h('form.modal-body', {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const c = await api('POST', '/categories', { body: { name: name.value.trim() } });
        categories.push(c);
        say(`Category “${c.name}” created.`, 'ok');
        d.close();
        route();
      } catch (ex) { showError(err, ex); }
    },
  }, field('Name', name), err, h('button.btn.primary', { type: 'submit' }, 'Create')));
  name.focus();
}

async function pageProduct(id) {
  const isNew = id === 'new';
  let p = isNew ? null : await get(`/products/${id}`);
  const err = errorBox();
  const inputs = {
    name: h('input', { name: 'name', required: true, maxLength: 200 }),
    sku: h('input', { name: 'sku', required: true, maxLength: 64, autocomplete: 'off' }),
    barcode: h('input', { name: 'barcode', inputMode: 'numeric', autocomplete: 'off' }),
    price: h('input', { name: 'price_cents', inputMode: 'decimal', required: true, autocomplete: 'off' }),
    tax: h('input', { name: 'tax_rate_bp', inputMode: 'decimal', autocomplete: 'off' }),
    category: h('select', { name: 'category_id' }, h('option', { value: '' }, 'No category'), categories.map((c) => h('option', { value: c.id }, c.name))),
    description: h('textarea', { name: 'description', rows: 3 }),
    track: h('input', { type: 'checkbox', name: 'track_stock' }),
    threshold: h('input', { type: 'number', name: 'low_stock_threshold', min: '0', inputMode: 'numeric' }),
    active: h('input', { type: 'checkbox', name: 'active' }),
    initial: h('input', { type: 'number', name: 'initial_stock', min: '0', inputMode: 'numeric' }),
  };
  for (const [k, el] of Object.entries(inputs)) el.id = `prod-${k}`;
  const setForm = (x) => {
    inputs.name.value = x ? x.name : '';
    inputs.sku.value = x ? x.sku : '';
    inputs.barcode.value = x && x.barcode ? x.barcode : '';
    inputs.price.value = x ? centsToInput(x.price_cents) : '';
    inputs.tax.value = x ? bpToPercent(x.tax_rate_bp) : '0';
    inputs.category.value = x && x.category_id ? x.category_id : '';
    inputs.description.value = x && x.description ? x.description : '';
    inputs.track.checked = x ? x.track_stock : true;
    inputs.threshold.value = x ? String(x.low_stock_threshold) : '5';
    inputs.active.checked = x ? x.active : true;
    inputs.initial.value = '0';
  };
  setForm(p);
  const read = () => {
    const price = parseMoney(inputs.price.value);
    const tax = parsePercentBp(inputs.tax.value || '0');
    const problems = [];
    if (price === null) problems.push('Price must be an amount like 4.99.');
    if (tax === null) problems.push('Tax rate must be a percentage from 0 to 100, like 8.25.');
    return {
      problems,
      body: {
        name: inputs.name.value.trim(),
        sku: inputs.sku.value.trim(),
        barcode: inputs.barcode.value.trim() || null,
        price_cents: price,
        tax_rate_bp: tax,
        category_id: inputs.category.value || null,
        description: inputs.description.value.trim() || null,
        track_stock: inputs.track.checked,
        low_stock_threshold: Math.max(0, Math.floor(Number(inputs.threshold.value) || 0)),
        ...(isNew ? {} : { active: inputs.active.checked }),
      },
    };
  };
  const save = h('button#save-product.btn.primary.big', { type: 'submit' }, isNew ? 'Create product' : 'Save changes');
  const reload = h('button#reload-product.btn.big', { type: 'button', hidden: true }, 'Reload');
  reload.addEventListener('click', async () => {
    p = await get(`/products/${id}`);
    setForm(p);
    showError(err, null);
    reload.hidden = true;
    stockLine();
    say('Reloaded with the latest changes.', 'info');
  });
  const stockInfo = h('p');
  const stockLine = () => {
    if (!p) return;
    fill(stockInfo, p.track_stock ? `Stock on hand: ${p.stock_on_hand} ` : 'Stock is not tracked. ',
      p.track_stock ? h('a', { href: `#/stock/${p.id}` }, 'Adjust stock') : null,
      h('span.muted', ` · version ${p.version}`));
  };
  stockLine();
  const form = h('form.card', {
    onsubmit: async (e) => {
      e.preventDefault();
      showError(err, null);
      markFields(form, null);
      const { problems, body } = read();
      if (problems.length) { showError(err, problems.join(' ')); return; }
      await busy(save, async () => {
        try {
          if (isNew) {
            const created = await api('POST', '/products', { body });
            const n = Math.floor(Number(inputs.initial.value) || 0);
            if (n > 0 && created.track_stock) {
              await api('POST', '/inventory/adjustments', { body: { product_id: created.id, delta: n, reason: 'received', note: 'Initial stock' } });
            }
            say(`Created ${created.name}.`, 'ok');
            location.hash = `#/products/${created.id}`;
            return;
          }
          // Send only what changed, against the version this form was loaded from.
          const changes = {};
          for (const [k, v] of Object.entries(body)) if (JSON.stringify(v) !== JSON.stringify(p[k] ?? null)) changes[k] = v;
          if (!Object.keys(changes).length) { say('Nothing changed.', 'info'); return; }
          p = await api('PATCH', `/products/${p.id}`, { body: changes, ifMatch: p.version });
          setForm(p);
          stockLine();
          say('Saved.', 'ok');
        } catch (ex) {
          if (ex.code === 'precondition_failed') {
            showError(err, CONFLICT);
            reload.hidden = false;
            reload.focus();
            return;
          }
          markFields(form, ex);
          showError(err, ex);
        }
      });
    },
  },
  h('div.form-grid',
    h('div.wide', field('Name', inputs.name)),
    field('SKU', inputs.sku, 'Letters, digits, . _ -'),
    field('Barcode (optional)', inputs.barcode),
    field('Price (before tax)', inputs.price),
    field('Tax rate %', inputs.tax, 'e.g. 8.25'),
    field('Category', inputs.category),
    field('Low-stock level', inputs.threshold),
    h('div.wide', field('Description', inputs.description)),
    h('label.check', inputs.track, 'Track stock'),
    isNew ? field('Initial stock (received)', inputs.initial) : h('label.check', inputs.active, 'Active (for sale)')),
  err,
  h('div.row', save, reload,
    !isNew && p.active ? h('button#deactivate.btn.danger', {
      type: 'button',
      onclick: async (e) => busy(e.currentTarget, async () => {
        try {
          await api('DELETE', `/products/${p.id}`);
          say(`${p.name} is no longer for sale.`, 'ok');
          route();
        } catch (ex) { showError(err, ex); }
      }),
    }, 'Stop selling') : null));
  // Photo changes bump the product's version: keep it, so the next save is not a false conflict.
  const photos = isNew ? null : imagesCard(p, async () => {
    try { p = { ...p, version: (await get(`/products/${p.id}`)).version }; stockLine(); } catch { /* shown on save */ }
  });
  fill(main, tabs('products'),
    h('p', h('a', { href: '#/products' }, '← Products')),
    h('h1', isNew ? 'New product' : p.name),
    stockInfo, form, photos);
  inputs.name.focus();
}

// =================== stock ===================
async function pageStock(productId) {
  const err = errorBox();
  const code = h('input#adj-code', { name: 'code', placeholder: 'Scan or type a barcode or SKU', autocomplete: 'off' });
  const chosen = h('p#adj-product.notice', { hidden: true });
  let product = null;
  const choose = (p) => {
    product = p;
    chosen.hidden = false;
    fill(chosen, h('strong', p.name), ` (${p.sku}) — stock on hand `, h('strong#adj-onhand', String(p.stock_on_hand)));
    loadMovements();
  };
  const delta = h('input#adj-delta', { type: 'number', name: 'delta', step: '1', required: true, inputMode: 'numeric' });
  const reason = h('select#adj-reason', { name: 'reason' },
    [['received', 'Received (delivery)'], ['damage', 'Damaged / written off'], ['count', 'Stock count'], ['correction', 'Correction']]
      .map(([v, l]) => h('option', { value: v }, l)));
  const note = h('input#adj-note', { name: 'note', maxLength: 500 });
  const submit = h('button.btn.primary.big', { type: 'submit' }, 'Adjust stock');
  const movements = h('div');
  const loadMovements = async () => {
    if (!product) return;
    try {
      const page = await get('/inventory/movements', { product_id: product.id, limit: 10 });
      fill(movements, h('h2', 'Recent movements'), page.items.length ? h('table',
        h('thead', h('tr', h('th', 'When'), h('th', 'Reason'), h('th.num', 'Change'), h('th.num', 'Balance'), h('th', 'Note'))),
        h('tbody', page.items.map((m) => h('tr',
          h('td', new Date(m.created_at).toLocaleString()), h('td', m.reason),
          h('td.num', m.delta > 0 ? `+${m.delta}` : String(m.delta)), h('td.num', String(m.balance_after)), h('td', m.note || ''))))) : h('p.muted', 'No movements yet.'));
    } catch (e) { fill(movements, h('p.muted', e.message)); }
  };
  const find = async () => {
    showError(err, null);
    const c = code.value.trim();
    if (!c) return;
    try { choose(await get('/products/lookup', { code: c })); } catch (e) {
      if (e.status !== 404) { showError(err, e); return; }
      const page = await get('/products', { q: c, limit: 1, include_inactive: 'true' });
      if (page.items.length) choose(page.items[0]); else showError(err, `No product matches “${c}”.`);
    }
  };
  code.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); find(); } });
  const form = h('form.card', {
    onsubmit: async (e) => {
      e.preventDefault();
      showError(err, null);
      if (!product) { showError(err, 'Choose a product first.'); code.focus(); return; }
      const d = Number(delta.value);
      if (!Number.isInteger(d) || d === 0) { showError(err, 'Enter a whole number other than 0: positive adds, negative removes.'); return; }
      await busy(submit, async () => {
        try {
          const r = await api('POST', '/inventory/adjustments', { body: { product_id: product.id, delta: d, reason: reason.value, ...(note.value.trim() ? { note: note.value.trim() } : {}) } });
          choose(r.product);
          delta.value = '';
          note.value = '';
          say(`Stock of ${r.product.name} is now ${r.product.stock_on_hand}.`, 'ok');
          loadLow();
        } catch (ex) {
          if (ex.code === 'insufficient_stock') showError(err, `That would take stock below zero (on hand: ${product.stock_on_hand}).`);
          else { markFields(form, ex); showError(err, ex); }
        }
      });
    },
  },
  h('h2', 'Adjust stock'),
  h('div.row', h('div.grow', field('Product', code)), h('div.field', h('button.btn', { type: 'button', onclick: find }, 'Find'))),
  chosen,
  h('div.form-grid', field('Change (+ adds, − removes)', delta), field('Reason', reason), h('div.wide', field('Note (optional)', note))),
  err, submit, movements);
  const low = h('tbody');
  const lowMore = h('button.btn', { type: 'button', hidden: true }, 'Load more');
  let lowCursor = null;
  const loadLow = async (append = false) => {
    if (!append) lowCursor = null;
    const page = await get('/inventory/low-stock', { limit: 25, cursor: lowCursor });
    if (!append) low.replaceChildren();
    for (const p of page.items) {
      low.append(h('tr', { dataset: { sku: p.sku } },
        h('td', h('button.btn.small.ghost', { type: 'button', onclick: () => { choose(p); delta.focus(); } }, p.name)),
        h('td', p.sku), h('td.num', String(p.stock_on_hand)), h('td.num', String(p.low_stock_threshold))));
    }
    if (!low.children.length) low.append(h('tr', h('td', { colspan: 4 }, h('span.muted', 'Nothing is running low.'))));
    lowCursor = page.next_cursor;
    lowMore.hidden = !lowCursor;
  };
  lowMore.addEventListener('click', () => busy(lowMore, () => loadLow(true)));
  fill(main, tabs('stock'), h('h1', 'Stock'),
    h('div.split', form,
      h('section.card', { 'aria-labelledby': 'low-h' }, h('h2#low-h', 'Low stock'),
        h('div.table-wrap', h('table', h('thead', h('tr', h('th', 'Product'), h('th', 'SKU'), h('th.num', 'On hand'), h('th.num', 'Alert'))), low)),
        lowMore)));
  loadLow().catch((e) => say(e.message, 'error'));
  if (productId) {
    try { choose(await get(`/products/${productId}`)); delta.focus(); } catch (e) { showError(err, e); }
  } else code.focus();
}

// =================== sales ===================
const isoDay = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

async function pageSales() {
  const today = new Date();
  const from = h('input#r-from', { type: 'date', name: 'from', value: isoDay(new Date(today.getTime() - 13 * 86400000)) });
  const to = h('input#r-to', { type: 'date', name: 'to', value: isoDay(today) });
  const out = h('div');
  const err = errorBox();
  const run = async () => {
    showError(err, null);
    try {
      const r = await get('/reports/sales', { from: from.value, to: to.value });
      fill(out, report(r, from.value, to.value));
    } catch (e) { showError(err, e); fill(out); }
  };
  const btn = h('button.btn.primary', { type: 'submit' }, 'Show');
  fill(main, tabs('sales'), h('h1', 'Sales'),
    h('form.card.row', { onsubmit: (e) => { e.preventDefault(); busy(btn, run); }, style: { marginBottom: '1rem' } },
      field('From', from), field('To', to), h('div.field', btn)),
    err, out);
  await run();
}

function report(r, fromDay, toDay) {
  const t = r.totals || {};
  const stat = (k, v) => h('div.card.stat', h('div.k', k), h('div.v', v));
  // Every day in the range, zero where nothing was sold.
  const byDate = new Map((r.days || []).map((d) => [d.date, d]));
  const days = [];
  for (let d = new Date(`${fromDay}T00:00:00`); isoDay(d) <= toDay && days.length < 400; d.setDate(d.getDate() + 1)) {
    days.push(byDate.get(isoDay(d)) || { date: isoDay(d), orders: 0, net_cents: 0, gross_cents: 0 });
  }
  const methods = Object.entries(r.by_payment_method || {});
  return h('div',
    h('div.stats',
      stat('Orders', String(t.orders ?? 0)),
      stat('Gross', money(t.gross_cents)),
      stat('Discounts', money(t.discount_cents)),
      stat('Tax', money(t.tax_cents)),
      stat('Refunds', money(t.refunds_cents)),
      stat('Net', money(t.net_cents))),
    h('section.card.chart', { style: { marginBottom: '1rem' } }, h('h2#chart-h', 'Net sales per day'), chart(days)),
    h('div.split',
      h('section.card', h('h2', 'Top products'),
        (r.top_products || []).length ? h('table',
          h('thead', h('tr', h('th', 'Product'), h('th.num', 'Qty'), h('th.num', 'Revenue'))),
          h('tbody', r.top_products.map((p) => h('tr', h('td', p.name), h('td.num', String(p.quantity)), h('td.num', money(p.revenue_cents))))))
          : h('p.muted', 'No sales in this period.')),
      h('section.card', h('h2', 'By payment method'),
        methods.length ? h('table', h('tbody', methods.map(([m, c]) => h('tr', h('td', m), h('td.num', money(c))))))
          : h('p.muted', 'No payments in this period.'))));
}

/** A bar chart drawn as inline SVG: one bar per day, y axis in money with 4 grid lines. */
function chart(days) {
  const NS = 'http://www.w3.org/2000/svg';
  const s = (tag, attrs = {}, text) => {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  };
  const W = 900; const H = 300; const L = 70; const B = 40; const T = 10; const R = 10;
  const max = Math.max(1, ...days.map((d) => d.net_cents));
  // A "nice" top value: 1, 2 or 5 × 10^n above the maximum.
  const mag = 10 ** Math.floor(Math.log10(max));
  const top = [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-h chart-desc' });
  svg.append(s('desc', { id: 'chart-desc' }, days.map((d) => `${d.date}: ${money(d.net_cents)}`).join('; ')));
  const plotW = W - L - R; const plotH = H - T - B;
  for (let i = 0; i <= 4; i += 1) {
    const y = T + plotH - (plotH * i) / 4;
    svg.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }));
    svg.append(s('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, money(Math.round((top * i) / 4))));
  }
  svg.append(s('line', { class: 'axis', x1: L, x2: W - R, y1: T + plotH, y2: T + plotH }));
  const slot = plotW / Math.max(1, days.length);
  const every = Math.ceil(days.length / 14);
  days.forEach((d, i) => {
    const hgt = Math.max(0, (plotH * d.net_cents) / top);
    const x = L + i * slot + slot * 0.15;
    const bar = s('rect', { class: 'bar', x, y: T + plotH - hgt, width: Math.max(1, slot * 0.7), height: hgt, rx: 2 });
    bar.append(s('title', {}, `${d.date}: ${money(d.net_cents)} from ${d.orders} orders`));
    svg.append(bar);
    if (i % every === 0) svg.append(s('text', { x: L + i * slot + slot / 2, y: H - B + 16, 'text-anchor': 'middle' }, d.date.slice(5)));
  });
  return svg;
}

// =================== staff ===================
const ROLES = ['admin', 'manager', 'cashier', 'staff', 'customer'];

async function pageStaff() {
  if (user.role !== 'admin') { fill(main, tabs('staff'), h('p.notice.warn', 'Only admins manage staff accounts.')); return; }
  const body = h('tbody');
  const more = h('button.btn', { type: 'button', hidden: true }, 'Load more');
  let cursor = null;
  const load = async (append) => {
    if (!append) cursor = null;
    const page = await get('/users', { limit: 50, cursor });
    if (!append) body.replaceChildren();
    for (const u of page.items) body.append(staffRow(u));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener('click', () => busy(more, () => load(true)));
  const err = errorBox();
  const inputs = {
    name: h('input#s-name', { name: 'name', required: true, autocomplete: 'off' }),
    email: h('input#s-email', { type: 'email', name: 'email', required: true, autocomplete: 'off' }),
    role: h('select#s-role', { name: 'role' }, ['cashier', 'staff', 'manager', 'admin'].map((r) => h('option', { value: r }, r))),
    password: h('input#s-password', { type: 'password', name: 'password', required: true, minLength: 8, autocomplete: 'new-password' }),
  };
  const submit = h('button.btn.primary.big', { type: 'submit' }, 'Create account');
  const form = h('form.card', {
    onsubmit: async (e) => {
      e.preventDefault();
      showError(err, null);
      await busy(submit, async () => {
        try {
          const u = await api('POST', '/users', { body: { name: inputs.name.value.trim(), email: inputs.email.value.trim(), role: inputs.role.value, password: inputs.password.value } });
          say(`Account for ${u.name} created.`, 'ok');
          form.reset();
          markFields(form, null);
          await load(false);
        } catch (ex) { markFields(form, ex); showError(err, ex); }
      });
    },
  }, h('h2', 'New staff account'), field('Name', inputs.name), field('Email', inputs.email), field('Role', inputs.role),
  field('Password', inputs.password, 'At least 8 characters. Tell them to keep it private.'), err, submit);
  fill(main, tabs('staff'), h('h1', 'Staff accounts'),
    h('div.split',
      h('section.card', h('div.table-wrap', h('table',
        h('thead', h('tr', h('th', 'Name'), h('th', 'Email'), h('th', 'Role'), h('th', 'Status'), h('th', h('span.sr-only', 'Actions')))),
        body)), more),
      form));
  await load(false);
}

function staffRow(u) {
  const self = u.id === user.id;
  const role = h('select', {
    'aria-label': `Role of ${u.name}`, disabled: self,
    onchange: async (e) => {
      try {
        const nu = await api('PATCH', `/users/${u.id}`, { body: { role: e.target.value } });
        say(`${nu.name} is now ${nu.role}.`, 'ok');
        row.replaceWith(staffRow(nu));
      } catch (ex) { say(ex.message, 'error'); e.target.value = u.role; }
    },
  }, ROLES.map((r) => h('option', { value: r, selected: r === u.role }, r)));
  const toggle = h(`button.btn.small${u.active ? '.danger' : ''}`, {
    type: 'button', disabled: self,
    onclick: async (e) => busy(e.currentTarget, async () => {
      try {
        const nu = await api('PATCH', `/users/${u.id}`, { body: { active: !u.active } });
        say(nu.active ? `${nu.name} can sign in again.` : `${nu.name} is deactivated and signed out everywhere.`, 'ok');
        row.replaceWith(staffRow(nu));
      } catch (ex) { say(ex.message, 'error'); }
    }),
  }, u.active ? 'Deactivate' : 'Reactivate', h('span.sr-only', ` ${u.name}`));
  const row = h(`tr${u.active ? '' : '.inactive'}`, { dataset: { email: u.email } },
    h('td', u.name, self ? h('span.muted', ' (you)') : null), h('td', u.email), h('td', role),
    h('td', u.active ? h('span.pill.ok', 'Active') : h('span.pill', 'Deactivated')),
    h('td', toggle));
  return row;
}

// =================== router ===================
function err(e) { say(e.message || String(e), 'error'); }

async function route() {
  const [, a, b] = (location.hash || '#/products').split('/');
  try {
    if (a === 'products' && b) await pageProduct(b);
    else if (a === 'import') pageImport(main, tabs);
    else if (a === 'stock') await pageStock(b);
    else if (a === 'sales') await pageSales();
    else if (a === 'shifts') await pageShifts(main, tabs('shifts'), user);
    else if (a === 'locations') await pageLocations(main, tabs('locations'), user);
    else if (a === 'transfers') await pageTransfers(main, tabs('transfers'), b);
    else if (a === 'counts') await pageCounts(main, tabs('counts'), b);
    else if (a === 'staff') await pageStaff();
    else if (a === 'webhooks') await pageWebhooks(main, tabs, b);
    else await pageProducts();
  } catch (e) {
    fill(main, tabs(a || 'products'), h('p.form-error', { role: 'alert' }, e.message));
  }
}

async function start() {
  reloginOn401();
  user = await requireUser(main, { roles: ['manager', 'admin'], title: 'Sign in to the back office', hint: 'Managers and admins.' });
  fill($('#user'), userBox(user));
  await loadCategories();
  try { const o = await get('/orders', { limit: 1 }); if (o.items[0]) setCurrency(o.items[0].currency); } catch { /* not needed */ }
  window.addEventListener('hashchange', route);
  await route();
}

start().catch(err);
