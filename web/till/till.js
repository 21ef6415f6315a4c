// The till: scan or search, a cart, discounts, split tenders, a printable receipt, and an offline
// queue so a sale is never lost or sent twice.

import {
  api, get, money, parseMoney, parsePercentBp, bpToPercent, centsToInput, uuid, setCurrency,
} from '../assets/api.js';
import { priceOrder, discountNeedsManager } from '../assets/pricing.js';
import {
  h, fill, $, say, requireUser, userBox, modal, errorBox, showError, field, busy, reloginOn401,
} from '../assets/ui.js';
import { SaleQueue } from './queue.js';
import { initShift, saleRegister, askToOpen } from './shift.js';
import { initLocation } from './location.js';

const ROLES = ['cashier', 'manager', 'admin'];
const main = $('#main');
let user = null;
let queue = null;

// ---- state ----
const cart = { lines: [], discount: null }; // lines: [{product, quantity}]

// Products seen at this till, by barcode and SKU, so scans keep working when the network drops.
const PRODUCT_CACHE = 'till.products.v1';
function cacheProduct(p) {
  try {
    const all = JSON.parse(localStorage.getItem(PRODUCT_CACHE) || '{}');
    for (const code of [p.barcode, p.sku]) if (code) all[code.toLowerCase()] = p;
    const keys = Object.keys(all);
    for (const k of keys.slice(0, Math.max(0, keys.length - 600))) delete all[k];
    localStorage.setItem(PRODUCT_CACHE, JSON.stringify(all));
  } catch { /* full storage: scanning still works online */ }
}
function cachedProduct(code) {
  try { return JSON.parse(localStorage.getItem(PRODUCT_CACHE) || '{}')[code.toLowerCase()] || null; } catch { return null; }
}

function preview() {
  return priceOrder(cart.lines.map((l) => ({
    unit_price_cents: l.product.price_cents, quantity: l.quantity, tax_rate_bp: l.product.tax_rate_bp,
  })), cart.discount);
}

// ---- layout ----
let els = {};

function layout() {
  const scanInput = h('input#scan', {
    type: 'text', name: 'code', autocomplete: 'off', autocapitalize: 'off', spellcheck: false,
    placeholder: 'Scan a barcode, or type a name or SKU', 'aria-describedby': 'scan-hint',
    enterkeyhint: 'search',
  });
  const scanForm = h('form.scan', { role: 'search', onsubmit: (e) => { e.preventDefault(); onScan(); } },
    h('label.sr-only', { for: 'scan' }, 'Barcode, SKU or product name'),
    scanInput,
    h('button.btn.primary.big', { type: 'submit' }, 'Add'));
  els = {
    scan: scanInput,
    results: h('div.card.search-results', { hidden: true, 'aria-label': 'Search results' }),
    cart: h('div.card.cart', { 'aria-label': 'Current sale' }),
    totals: h('section.card.totals', { 'aria-label': 'Totals' }),
    queuePanel: h('section.card.queue-panel', { hidden: true, 'aria-label': 'Sales waiting to send' }),
    payBtn: h('button#pay.btn.ok.huge', { type: 'button', onclick: openPay }, 'Pay ', h('kbd', 'F2')),
    discBtn: h('button#discount.btn.big', { type: 'button', onclick: openDiscount }, 'Discount ', h('kbd', 'F4')),
    cancelBtn: h('button#cancel-sale.btn.danger.big', { type: 'button', onclick: cancelSale }, 'Cancel ', h('kbd', 'Esc')),
  };
  fill(main, h('div.till-grid',
    h('section.till-left',
      scanForm,
      h('p#scan-hint.sr-only', 'Press Enter to add. Arrow down moves into the search results.'),
      els.results,
      els.cart),
    h('p#announce.sr-only', { 'aria-live': 'polite' }),
    h('aside.till-side',
      els.totals,
      h('div.till-actions', els.payBtn, els.discBtn, els.cancelBtn),
      els.queuePanel)));
  scanInput.addEventListener('input', onScanInput);
  scanInput.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') {
      const first = els.results.querySelector('button');
      if (first) { e.preventDefault(); first.focus(); }
    }
  });
  render();
  scanInput.focus();
}

function render() {
  const p = preview();
  // cart
  if (!cart.lines.length) {
    fill(els.cart, h('p.cart-empty', 'No items yet. Scan a barcode or search to start a sale.'));
  } else {
    const rows = cart.lines.map((l, i) => {
      const pl = p.lines[i];
      const qty = h('input', {
        type: 'number', min: '1', max: '1000', inputMode: 'numeric', value: String(l.quantity),
        'aria-label': `Quantity of ${l.product.name}`,
        onchange: (e) => setQty(i, Number(e.target.value)),
      });
      const low = l.product.track_stock && l.quantity > l.product.stock_on_hand;
      return h('tr', { dataset: { sku: l.product.sku } },
        h('td', h('strong', l.product.name), h('br'), h('small.muted', l.product.sku),
          low ? h('div', h('span.pill.bad', `Only ${l.product.stock_on_hand} in stock`)) : null),
        h('td.num.hide-narrow', money(l.product.price_cents)),
        h('td.qty',
          h('button.btn.small', { type: 'button', 'aria-label': `One less ${l.product.name}`, onclick: () => setQty(i, l.quantity - 1) }, '−'),
          ' ', qty, ' ',
          h('button.btn.small', { type: 'button', 'aria-label': `One more ${l.product.name}`, onclick: () => setQty(i, l.quantity + 1) }, '+')),
        h('td.num.line-total', money(pl.subtotal_cents)),
        h('td', h('button.btn.small.ghost', { type: 'button', 'aria-label': `Remove ${l.product.name}`, onclick: () => removeLine(i) }, '✕')));
    });
    fill(els.cart, h('table',
      h('caption.sr-only', 'Items in this sale'),
      h('thead', h('tr', h('th', 'Item'), h('th.num.hide-narrow', 'Price'), h('th', 'Qty'), h('th.num', 'Amount'), h('th', h('span.sr-only', 'Remove')))),
      h('tbody', rows)));
  }
  // totals
  const count = cart.lines.reduce((a, l) => a + l.quantity, 0);
  const d = cart.discount;
  fill(els.totals, h('dl',
    h('dt', `Items (${count})`), h('dd#t-subtotal', money(p.subtotal_cents)),
    h('dt', d ? `Discount${d.type === 'percent' ? ` ${bpToPercent(d.value_bp)}%` : ''}` : 'Discount'),
    h('dd#t-discount', p.discount_cents ? `−${money(p.discount_cents)}` : money(0)),
    h('dt', 'Tax'), h('dd#t-tax', money(p.tax_cents)),
    h('dt.grand', 'Total'), h('dd#t-total.grand', money(p.total_cents))),
  p.error ? h('p.form-error', { role: 'alert' }, p.error) : null);
  els.payBtn.disabled = !cart.lines.length || !!p.error;
  els.cancelBtn.disabled = !cart.lines.length;
  els.discBtn.disabled = !cart.lines.length;
}

function addProduct(p) {
  if (!p.active) { say(`${p.name} is not for sale (inactive).`, 'error'); return; }
  cacheProduct(p);
  const i = cart.lines.findIndex((l) => l.product.id === p.id);
  if (i >= 0) {
    cart.lines[i].quantity = Math.min(1000, cart.lines[i].quantity + 1);
    cart.lines[i].product = p;
  } else {
    if (cart.lines.length >= 100) { say('A sale can have at most 100 different items.', 'error'); return; }
    cart.lines.push({ product: p, quantity: 1 });
  }
  render();
  announce(`Added ${p.name}`);
  const row = els.cart.querySelector(`tr[data-sku="${CSS.escape(p.sku)}"]`);
  if (row) { row.classList.add('flash'); row.scrollIntoView({ block: 'nearest' }); }
}

/** Read out to screen readers without covering the screen. */
function announce(msg) {
  const live = $('#announce');
  if (live) live.textContent = msg;
}

function setQty(i, q) {
  if (!Number.isFinite(q) || q < 1) { removeLine(i); return; }
  cart.lines[i].quantity = Math.min(1000, Math.floor(q));
  render();
}
function removeLine(i) {
  cart.lines.splice(i, 1);
  render();
  els.scan.focus();
}

// ---- scanning and search ----
let searchTimer = null;
let searchSeq = 0;

function onScanInput() {
  clearTimeout(searchTimer);
  const q = els.scan.value.trim();
  if (q.length < 3) { els.results.hidden = true; return; }
  // Scanners type a whole code in a few milliseconds and press Enter; people pause.
  searchTimer = setTimeout(() => search(q), 350);
}

async function onScan() {
  clearTimeout(searchTimer);
  searchSeq += 1; // an answer to a search typed before Enter must not pop up afterwards
  const code = els.scan.value.trim();
  if (!code) return;
  els.scan.value = '';
  els.results.hidden = true;
  if (!/\s/.test(code)) {
    try {
      const p = await get('/products/lookup', { code });
      addProduct(p);
      return;
    } catch (e) {
      if (e.code === 'network') {
        const c = cachedProduct(code);
        if (c) { addProduct(c); return; }
        say(`Offline, and ${code} was not scanned at this till before. Try again when online.`, 'error');
        return;
      }
      if (e.status !== 404) { say(e.message, 'error'); return; }
    }
  }
  const found = await search(code);
  if (found && found.length === 1) {
    addProduct(found[0]);
    els.results.hidden = true;
  } else if (found && !found.length) {
    say(`No product matches “${code}”.`, 'error');
  }
}

async function search(q) {
  const seq = ++searchSeq;
  let page;
  try {
    page = await get('/products', { q, limit: 12 });
  } catch (e) {
    if (seq === searchSeq) say(e.message, 'error');
    return null;
  }
  if (seq !== searchSeq) return null;
  const items = page.items.filter((p) => p.active);
  items.forEach(cacheProduct);
  fill(els.results,
    h('h2.sr-only', 'Search results'),
    items.length
      ? h('ul', items.map((p) => h('li', h('button.btn.result', {
        type: 'button',
        onclick: () => { addProduct(p); els.results.hidden = true; els.scan.value = ''; els.scan.focus(); },
        onkeydown: (e) => moveInList(e),
      }, h('span', h('strong', p.name), ' ', h('small.muted', p.sku)), h('span.num', money(p.price_cents))))))
      : h('p.muted', `No product matches “${q}”.`));
  els.results.hidden = false;
  return items;
}

function moveInList(e) {
  const buttons = [...els.results.querySelectorAll('button')];
  const i = buttons.indexOf(e.target);
  if (e.key === 'ArrowDown' && buttons[i + 1]) { e.preventDefault(); buttons[i + 1].focus(); }
  if (e.key === 'ArrowUp') { e.preventDefault(); (buttons[i - 1] || els.scan).focus(); }
}

// ---- discount ----
function openDiscount() {
  if (!cart.lines.length) return;
  const err = errorBox();
  const cur = cart.discount;
  const kind = cur ? cur.type : 'percent';
  const pct = h('input', { type: 'radio', name: 'dtype', value: 'percent', checked: kind === 'percent' });
  const amt = h('input', { type: 'radio', name: 'dtype', value: 'amount', checked: kind === 'amount' });
  const value = h('input#discount-value', {
    type: 'text', inputMode: 'decimal', autocomplete: 'off',
    value: cur ? (cur.type === 'percent' ? bpToPercent(cur.value_bp) : centsToInput(cur.amount_cents)) : '',
  });
  const warn = h('p.notice.warn', { hidden: true });
  const check = () => {
    const d = read();
    warn.hidden = !(d && user.role === 'cashier' && discountNeedsManager(d, preview().subtotal_cents));
    warn.textContent = 'Discounts over 20% need a manager. The server will refuse this one for a cashier.';
  };
  const read = () => {
    if (pct.checked) {
      const bp = parsePercentBp(value.value);
      return bp === null ? null : { type: 'percent', value_bp: bp };
    }
    const c = parseMoney(value.value);
    return c === null ? null : { type: 'amount', amount_cents: c };
  };
  value.addEventListener('input', check);
  pct.addEventListener('change', check);
  amt.addEventListener('change', check);
  const d = modal('Discount on this sale', h('form.modal-body', {
    onsubmit: (e) => {
      e.preventDefault();
      const disc = read();
      if (!disc) { showError(err, pct.checked ? 'Enter a percentage from 0 to 100, like 10 or 12.5.' : 'Enter an amount like 5.00.'); return; }
      if (disc.type === 'amount' && disc.amount_cents > preview().subtotal_cents) {
        showError(err, 'The discount is larger than the subtotal.');
        return;
      }
      cart.discount = (disc.type === 'percent' ? disc.value_bp : disc.amount_cents) ? disc : null;
      d.close();
      render();
    },
  },
  h('fieldset', h('legend', 'Kind'),
    h('label.check', pct, 'Percent off'),
    h('label.check', amt, 'Amount off')),
  field('Value', value, 'Percent (10 = 10 %) or an amount (5.00)'),
  warn, err,
  h('div.row',
    h('button.btn.primary.big', { type: 'submit' }, 'Apply'),
    cur ? h('button.btn.big', { type: 'button', onclick: () => { cart.discount = null; d.close(); render(); } }, 'Remove discount') : null)),
  { onClose: () => els.scan.focus() });
  value.focus();
  value.select();
}

// ---- cancel ----
function cancelSale() {
  if (!cart.lines.length) return;
  const d = modal('Cancel this sale?', h('div.modal-body',
    h('p', 'All items will be removed. Nothing has been charged.'),
    h('div.row',
      h('button#confirm-cancel.btn.danger.big', { type: 'button', onclick: () => { resetSale(); d.close(); } }, 'Yes, clear the sale'),
      h('button.btn.big', { type: 'button', onclick: () => d.close() }, 'Keep it'))),
  { onClose: () => els.scan.focus() });
  $('#confirm-cancel', d).focus();
}

function resetSale() {
  cart.lines = [];
  cart.discount = null;
  render();
}

// ---- payment ----
function openPay() {
  if (!cart.lines.length) return;
  const p = preview();
  if (p.error) return;
  const total = p.total_cents;
  const tenders = []; // {method, amount_cents, tendered_cents?}
  let method = 'cash';
  const err = errorBox();
  const due = h('div.pay-due', { 'aria-live': 'polite' });
  const list = h('ul.tenders', { 'aria-label': 'Payments taken' });
  const amount = h('input#pay-amount', { type: 'text', inputMode: 'decimal', autocomplete: 'off', name: 'amount' });
  const tendered = h('input#pay-tendered', { type: 'text', inputMode: 'decimal', autocomplete: 'off', name: 'tendered' });
  const tenderedField = field('Cash received', tendered);
  const quick = h('div.quick-cash', { 'aria-label': 'Quick cash amounts' });
  const changeLine = h('p', { 'aria-live': 'polite' });
  const methodBtns = ['cash', 'card', 'other'].map((m) => h('button.btn.big', {
    type: 'button', 'aria-pressed': String(m === method), dataset: { method: m },
    onclick: () => { method = m; sync(true); amount.focus(); amount.select(); },
  }, { cash: 'Cash', card: 'Card', other: 'Other' }[m]));
  const addBtn = h('button#add-tender.btn.primary.big', { type: 'submit' }, 'Take payment');
  const completeBtn = h('button#complete-sale.btn.ok.huge', { type: 'button', onclick: () => complete() }, 'Complete sale');

  const paid = () => tenders.reduce((a, t) => a + t.amount_cents, 0);
  const remaining = () => total - paid();
  const change = () => tenders.reduce((a, t) => a + (t.tendered_cents ? t.tendered_cents - t.amount_cents : 0), 0);

  function sync(resetAmount) {
    for (const b of methodBtns) b.setAttribute('aria-pressed', String(b.dataset.method === method));
    const left = remaining();
    fill(due, left > 0 ? `Due ${money(left)}` : 'Paid in full');
    fill(list, tenders.map((t, i) => h('li',
      h('span', `${t.method === 'cash' ? 'Cash' : t.method === 'card' ? 'Card' : 'Other'}${t.tendered_cents ? ` (received ${money(t.tendered_cents)})` : ''}`),
      h('span', money(t.amount_cents), ' ',
        h('button.btn.small.ghost', { type: 'button', 'aria-label': `Remove payment ${i + 1}`, onclick: () => { tenders.splice(i, 1); sync(true); } }, '✕')))));
    tenderedField.hidden = method !== 'cash';
    if (resetAmount) {
      amount.value = centsToInput(Math.max(0, left));
      tendered.value = '';
    }
    const cashDue = parseMoney(amount.value) ?? left;
    fill(quick, method === 'cash' && left > 0
      ? [cashDue, ...[500, 1000, 2000, 5000, 10000].map((n) => Math.ceil(cashDue / n) * n)]
        .filter((v, i, a) => v > 0 && a.indexOf(v) === i).slice(0, 5)
        .map((v) => h('button.btn', { type: 'button', onclick: () => { tendered.value = centsToInput(v); addTender(); } }, money(v)))
      : []);
    const ch = change();
    fill(changeLine, ch > 0 ? h('span', 'Change due: ', h('span#change-due.change-due', money(ch))) : '');
    form.hidden = left <= 0;
    completeBtn.hidden = left > 0;
    if (left <= 0) completeBtn.focus();
  }

  function addTender() {
    showError(err, null);
    const left = remaining();
    let amt = parseMoney(amount.value);
    if (amt === null || amt <= 0) { showError(err, 'Enter the amount to take, like 12.50.'); amount.focus(); return; }
    if (method === 'cash') {
      const got = tendered.value.trim() ? parseMoney(tendered.value) : amt;
      if (got === null || got <= 0) { showError(err, 'Enter the cash received, like 20.00.'); tendered.focus(); return; }
      // Less cash than the amount is a partial cash payment; more is change.
      amt = Math.min(amt, left, got);
      tenders.push({ method, amount_cents: amt, tendered_cents: got });
    } else {
      if (amt > left) { showError(err, `That's more than the ${money(left)} still due.`); amount.focus(); return; }
      tenders.push({ method, amount_cents: amt });
    }
    method = 'cash';
    sync(true);
    if (remaining() > 0) { amount.focus(); amount.select(); }
  }

  const form = h('form', { onsubmit: (e) => { e.preventDefault(); addTender(); } },
    h('div.pay-methods', { role: 'group', 'aria-label': 'Payment method' }, methodBtns),
    field('Amount', amount),
    tenderedField,
    quick,
    h('div.row', addBtn));
  amount.addEventListener('input', () => sync(false));
  const body = h('div.modal-body',
    h('p.muted', `Total ${money(total)}`),
    due, list, changeLine, form, err, completeBtn);
  const dlg = modal('Take payment', body, { onClose: () => { if (!finished) els.scan.focus(); } });
  let finished = false;
  sync(true);
  amount.focus();
  amount.select();

  async function complete() {
    if (remaining() > 0) return;
    await busy(completeBtn, async () => {
      const sale = buildSale(p, tenders);
      finished = true;
      dlg.close();
      await submitSale(sale);
    });
  }
}

function buildSale(p, tenders) {
  const lines = cart.lines.map((l) => ({ product_id: l.product.id, quantity: l.quantity }));
  const body = { fulfilment: 'in_store', lines };
  if (cart.discount) body.discount = cart.discount;
  if (saleRegister()) body.register_id = saleRegister();
  return {
    id: uuid(),
    created_at: new Date().toISOString(),
    order_key: uuid(),
    order_body: body,
    payments: tenders.map((t) => ({
      key: uuid(),
      body: t.method === 'cash'
        ? { method: 'cash', amount_cents: t.amount_cents, tendered_cents: t.tendered_cents }
        : { method: t.method, amount_cents: t.amount_cents },
    })),
    preview: {
      ...p,
      names: cart.lines.map((l) => ({ name: l.product.name, sku: l.product.sku, unit_price_cents: l.product.price_cents, quantity: l.quantity, tax_rate_bp: l.product.tax_rate_bp })),
      cashier: user.name,
    },
  };
}

async function submitSale(sale) {
  queue.watching.add(sale.id);
  queue.add(sale);
  const snapshot = { lines: cart.lines.map((l) => ({ ...l })), discount: cart.discount };
  resetSale();
  const status = say('Sending the sale…', 'info', 0);
  await Promise.race([queue.flush(), new Promise((r) => setTimeout(r, 10000))]);
  status.remove();
  queue.watching.delete(sale.id);
  const now = queue.list().find((s) => s.id === sale.id);
  if (!now) { renderQueue(); return; }
  if (now.state === 'done') {
    queue.take(sale.id);
    showReceipt(now, false);
  } else if (now.state === 'failed' && !now.order) {
    // Refused before anything happened (e.g. not enough stock): give the cart back to fix it.
    queue.remove(sale.id);
    cart.lines = snapshot.lines;
    cart.discount = snapshot.discount;
    render();
    saleRefused(now);
  } else if (now.state === 'failed') {
    say(`Order ${now.order.number} was created but a payment was refused: ${now.error}`, 'error', 0);
    if (now.error_code === 'no_open_shift') askToOpen();
  } else {
    showReceipt(now, true);
  }
  renderQueue();
}

function saleRefused(sale) {
  let msg = sale.error;
  if (sale.error_code === 'forbidden' && sale.order_body.discount) {
    msg = 'Discounts over 20% need a manager. Ask a manager to sign in, or lower the discount.';
  }
  if (sale.error_code === 'insufficient_stock' && sale.error_details && sale.error_details.lines) {
    msg = `Not enough stock: ${sale.error_details.lines.map((l) => {
      const line = cart.lines.find((c) => c.product.id === l.product_id);
      return `${line ? line.product.name : 'an item'} (only ${l.available} left)`;
    }).join(', ')}.`;
  }
  const d = modal('The sale was not completed', h('div.modal-body',
    h('p.form-error', { role: 'alert' }, msg),
    h('p', 'No money was recorded. Fix the sale and take payment again.'),
    h('button#refused-ok.btn.primary.big', { type: 'button', onclick: () => d.close() }, 'OK')),
  { onClose: () => els.scan.focus() });
  $('#refused-ok', d).focus();
}

// ---- receipt ----
function showReceipt(sale, offline) {
  const o = sale.order;
  const cur = o ? o.currency : undefined;
  if (cur) setCurrency(cur);
  const m = (c) => money(c, cur);
  const lines = o ? o.lines : sale.preview.names.map((n, i) => ({ ...n, ...sale.preview.lines[i] }));
  const totals = o || sale.preview;
  const pays = sale.paid && sale.paid.length === sale.payments.length
    ? sale.paid
    : sale.payments.map((p) => ({ ...p.body, change_cents: p.body.tendered_cents ? p.body.tendered_cents - p.body.amount_cents : 0 }));
  const change = pays.reduce((a, p) => a + (p.change_cents || 0), 0);
  const when = new Date(o ? o.created_at : sale.created_at);
  const receipt = h('div#receipt.receipt', { 'aria-label': 'Receipt' },
    h('h2', 'Till'),
    h('div.r-center', o ? `Order #${o.number}` : `Sale ${sale.id.slice(0, 8)}`),
    h('div.r-center', when.toLocaleString()),
    h('div.r-center', `Served by ${sale.preview.cashier}`),
    offline ? h('div.r-note', 'OFFLINE – will be sent when the connection returns') : null,
    h('div.r-sep'),
    h('table', h('tbody', lines.map((l) => [
      h('tr', h('td', { colspan: 2 }, l.name)),
      h('tr', h('td', `  ${l.quantity} × ${m(l.unit_price_cents)}`), h('td.num', m(l.subtotal_cents))),
    ]))),
    h('div.r-sep'),
    h('table', h('tbody',
      h('tr', h('td', 'Subtotal'), h('td.num', m(totals.subtotal_cents))),
      totals.discount_cents ? h('tr', h('td', 'Discount'), h('td.num', `−${m(totals.discount_cents)}`)) : null,
      h('tr', h('td', 'Tax'), h('td.num#r-tax', m(totals.tax_cents))),
      h('tr.r-total', h('td', 'TOTAL'), h('td.num#r-total', m(totals.total_cents))))),
    h('div.r-sep'),
    h('table', h('tbody',
      pays.map((p) => [
        h('tr', h('td', p.method === 'cash' ? 'Cash' : p.method === 'card' ? 'Card' : 'Other'), h('td.num', m(p.amount_cents))),
        p.tendered_cents ? h('tr', h('td', '  Received'), h('td.num', m(p.tendered_cents))) : null,
      ]),
      h('tr.r-total', h('td', 'CHANGE'), h('td.num#r-change', m(change))))),
    h('div.r-sep'),
    h('div.r-center', 'Thank you!'));
  const newSale = h('button#new-sale.btn.primary.big', { type: 'button', onclick: () => d.close() }, 'New sale ', h('kbd', 'Enter'));
  // The printer gets a copy that lives outside the dialog (see @media print in app.css).
  let printRoot = $('#print-root');
  if (!printRoot) { printRoot = h('div#print-root', { 'aria-hidden': 'true' }); document.body.append(printRoot); }
  const copy = receipt.cloneNode(true);
  for (const el of [copy, ...copy.querySelectorAll('[id]')]) el.removeAttribute('id');
  fill(printRoot, copy);
  const d = modal(offline ? 'Sale saved offline' : 'Sale complete', h('div.modal-body',
    offline ? h('p.notice.warn', { role: 'alert' }, "No connection. The sale is saved on this till and will be sent automatically; don't ring it up again.") : null,
    change ? h('p', 'Change due: ', h('span.change-due', m(change))) : null,
    receipt,
    h('div.row', { style: { marginTop: '1rem' } },
      newSale,
      h('button#print.btn.big', { type: 'button', onclick: () => printReceipt(o) }, 'Print receipt'))),
  { onClose: () => els.scan.focus() });
  newSale.focus();
  return d;
}

/** Prints the server's receipt (the same layout as the text one for ESC/POS printers; a
 *  reprint says COPY) in a hidden frame. Offline, or before the order exists, the local copy
 *  above is printed instead. */
function printReceipt(o) {
  if (!o || !navigator.onLine) { window.print(); return; }
  let frame = $('#receipt-frame');
  if (!frame) {
    frame = h('iframe#receipt-frame', { title: 'Receipt for printing', 'aria-hidden': 'true', tabIndex: -1 });
    Object.assign(frame.style, { position: 'fixed', width: '0', height: '0', border: '0', right: '0', bottom: '0' });
    document.body.append(frame);
  }
  frame.onload = () => {
    try { frame.contentWindow.focus(); frame.contentWindow.print(); } catch { window.print(); }
  };
  frame.src = `/api/v1/orders/${o.id}/receipt?format=html&width=80`;
}

// ---- queue panel ----
function renderQueue() {
  const list = queue.list().filter((s) => s.state !== 'done');
  const mine = list.filter((s) => s.user_id === user.id);
  const waiting = mine.filter((s) => s.state === 'queued');
  const pill = $('#queue-pill');
  pill.hidden = !list.length;
  pill.textContent = `${waiting.length} waiting to send`;
  els.queuePanel.hidden = !list.length;
  fill(els.queuePanel,
    h('h2', 'Sales waiting to send'),
    h('ul', list.map((s) => h('li',
      h('strong', new Date(s.created_at).toLocaleTimeString()), ' ',
      money(s.preview.total_cents), ' — ',
      s.user_id !== user.id ? h('span.muted', 'another cashier’s: sent when they sign in')
        : s.state === 'failed' ? [h('span.pill.bad', 'Needs attention'), ' ', s.error,
          ' ', h('button.btn.small', { type: 'button', onclick: () => { queue.remove(s.id); renderQueue(); } }, 'Dismiss')]
          : h('span', s.error ? `waiting (${s.error})` : 'waiting')))),
    waiting.length ? h('button.btn', { type: 'button', onclick: () => queue.flush() }, 'Send now') : null);
}

function netStatus() {
  const pill = $('#net');
  const on = navigator.onLine;
  pill.className = `pill ${on ? 'ok' : 'bad'}`;
  pill.textContent = on ? 'Online' : 'Offline';
}

// ---- keys ----
function onKey(e) {
  if (document.querySelector('dialog[open]')) return; // dialogs handle their own keys (Esc closes)
  if (e.key === 'F2') { e.preventDefault(); openPay(); }
  else if (e.key === 'F4') { e.preventDefault(); openDiscount(); }
  else if (e.key === 'F9') { e.preventDefault(); els.scan.focus(); }
  else if (e.key === 'Escape') {
    e.preventDefault();
    if (!els.results.hidden) { els.results.hidden = true; els.scan.focus(); } else cancelSale();
  }
}

// ---- start ----
async function start() {
  reloginOn401();
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/till/sw.js', { scope: '/till/' }).catch(() => { /* works without it */ });
  }
  try {
    user = await requireUser(main, { roles: ROLES, title: 'Sign in to the till', hint: 'Cashiers, managers and admins.' });
  } catch (e) {
    // Reopened while the network is down: carry on as the cashier this tab had, queueing sales.
    const saved = JSON.parse(sessionStorage.getItem('till.user') || 'null');
    if (e.code !== 'network' || !saved) throw e;
    user = saved;
    say('Offline: sales are kept on this till and sent when the connection returns.', 'info', 10000);
  }
  sessionStorage.setItem('till.user', JSON.stringify(user));
  fill($('#user'), userBox(user));
  queue = new SaleQueue(user.id, () => renderQueue());
  layout();
  renderQueue();
  netStatus();
  window.addEventListener('online', netStatus);
  window.addEventListener('offline', netStatus);
  document.addEventListener('keydown', onKey);
  queue.flush();
  initShift($('#shift-bar')).catch((e) => say(e.message || String(e), 'error'));
  initLocation($('#till-location'));
  // Keep a cashier's hands on the scanner: clicks on empty space give focus back to the scan box.
  main.addEventListener('click', (e) => {
    if (e.target === main || e.target.classList.contains('till-grid')) els.scan.focus();
  });
}

start().catch((e) => say(e.message || String(e), 'error', 0));

// Exposed for the end-to-end tests and support: how many sales are waiting.
window.tillQueue = () => (queue ? queue.list() : []);
