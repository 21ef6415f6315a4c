// Back office: transfers between locations. Create one by scanning products, dispatch it, receive
// it with a scanner (each scan is one unit in good order; damaged units are typed in), or cancel.

import { get, post, uuid } from '../assets/api.js';
import { h, fill, say, errorBox, showError, field, busy } from '../assets/ui.js';
import { loadLocations, lookupCode } from './locations.js';

const STATUS = {
  draft: 'Draft', in_transit: 'In transit', partially_received: 'Partly received', received: 'Received', cancelled: 'Cancelled',
};

export async function pageTransfers(main, tabsEl, id) {
  const locs = await loadLocations();
  if (id) return pageTransfer(main, tabsEl, locs, id);
  const page = await get('/inventory/transfers', { limit: 50 });
  const rows = page.items.map((t) => h('tr', { dataset: { transfer: t.number } },
    h('td', h('a', { href: `#/transfers/${t.id}` }, `#${t.number}`)),
    h('td', locs.name[t.from_location_id] || '—'), h('td', locs.name[t.to_location_id] || '—'),
    h('td', String(t.lines.reduce((n, l) => n + l.quantity, 0))),
    h('td', h('span.pill', STATUS[t.status] || t.status))));
  if (!rows.length) rows.push(h('tr', h('td', { colspan: 5 }, h('span.muted', 'No transfers yet.'))));
  fill(main, tabsEl, h('h1', 'Transfers'), newTransferForm(locs, (t) => { location.hash = `#/transfers/${t.id}`; }),
    h('section.card', h('div.table-wrap', h('table#transfers-table',
      h('thead', h('tr', h('th', '#'), h('th', 'From'), h('th', 'To'), h('th', 'Units'), h('th', 'Status'))),
      h('tbody', rows)))));
  return undefined;
}

/** A scan box: Enter looks the code up and hands the product to `onProduct`. */
function scanBox(id, label, onProduct) {
  const input = h(`input#${id}`, { type: 'text', inputMode: 'text', autocomplete: 'off', placeholder: 'Scan or type a barcode / SKU', enterKeyHint: 'enter' });
  input.addEventListener('keydown', async (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    const code = input.value.trim();
    input.value = '';
    if (!code) return;
    const p = await lookupCode(code);
    if (!p) { say(`No product with the code ${code}.`, 'error'); return; }
    onProduct(p);
    input.focus();
  });
  return field(label, input);
}

function newTransferForm(locs, done) {
  const err = errorBox();
  const active = locs.items.filter((l) => l.active);
  const opts = () => active.map((l) => h('option', { value: l.id }, locs.name[l.id]));
  const from = h('select#tr-from', opts());
  const to = h('select#tr-to', opts());
  if (active.length > 1) to.value = active[1].id;
  const lines = new Map();
  const list = h('tbody');
  const draw = () => list.replaceChildren(...[...lines.values()].map((l) => {
    const qty = h('input', { type: 'number', min: 1, value: l.quantity, 'aria-label': `Quantity of ${l.sku}`, style: { width: '6rem' } });
    qty.addEventListener('change', () => { l.quantity = Math.max(1, Number(qty.value) || 1); });
    return h('tr', h('td', l.sku), h('td', l.name), h('td', qty));
  }));
  const scan = scanBox('tr-scan', 'Add product', (p) => {
    const l = lines.get(p.id) || { product_id: p.id, sku: p.sku, name: p.name, quantity: 0 };
    l.quantity += 1;
    lines.set(p.id, l);
    draw();
  });
  const dispatch = h('input#tr-dispatch', { type: 'checkbox' });
  const create = h('button.btn.primary#tr-create', { type: 'button' }, 'Create transfer');
  create.addEventListener('click', () => busy(create, async () => {
    try {
      const t = await post('/inventory/transfers', {
        from_location_id: from.value, to_location_id: to.value, dispatch: dispatch.checked,
        lines: [...lines.values()].map((l) => ({ product_id: l.product_id, quantity: l.quantity })),
      }, { idempotencyKey: uuid() });
      say(`Transfer #${t.number} created.`, 'ok');
      done(t);
    } catch (ex) { showError(err, ex); }
  }));
  return h('section.card', { style: { marginBottom: '1rem' } }, h('h2', 'New transfer'),
    h('div.row', field('From', from), field('To', to)), scan,
    h('div.table-wrap', h('table#tr-lines', h('thead', h('tr', h('th', 'SKU'), h('th', 'Product'), h('th', 'Quantity'))), list)),
    h('div.row', field('Dispatch now', dispatch), h('div.field', create)), err);
}

async function pageTransfer(main, tabsEl, locs, id) {
  const t = await get(`/inventory/transfers/${id}`);
  const reload = () => pageTransfer(main, tabsEl, locs, id);
  const err = errorBox();
  const act = (label, path, idClass) => {
    const b = h(`button.btn${idClass}`, { type: 'button' }, label);
    b.addEventListener('click', () => busy(b, async () => {
      try { await post(path, {}, { idempotencyKey: uuid() }); await reload(); } catch (ex) { showError(err, ex); }
    }));
    return b;
  };
  const open = t.status === 'in_transit' || t.status === 'partially_received';
  const got = new Map(t.lines.map((l) => [l.product_id, { received: 0, damaged: 0 }]));
  const body = h('tbody');
  const draw = () => body.replaceChildren(...t.lines.map((l) => {
    const g = got.get(l.product_id);
    const left = l.quantity - l.received - l.damaged;
    const dmg = h('input', { type: 'number', min: 0, value: g.damaged, 'aria-label': `Damaged ${l.sku}`, style: { width: '5rem' } });
    dmg.addEventListener('change', () => { g.damaged = Math.max(0, Number(dmg.value) || 0); });
    return h('tr', { dataset: { sku: l.sku } }, h('td', l.sku), h('td', l.name), h('td.num', String(l.quantity)),
      h('td.num', String(l.received)), h('td.num', String(l.damaged)), h('td.num', String(left)),
      open ? h('td.num.scanned', String(g.received)) : null, open ? h('td', dmg) : null);
  }));
  draw();
  let receiveCard = null;
  if (open) {
    const scan = scanBox('rc-scan', 'Scan what arrived', (p) => {
      const g = got.get(p.id);
      if (!g) { say(`${p.sku} is not on this transfer.`, 'error'); return; }
      g.received += 1;
      draw();
    });
    const save = h('button.btn.primary#rc-save', { type: 'button' }, 'Record receipt');
    const key = uuid();
    save.addEventListener('click', () => busy(save, async () => {
      try {
        const lines = [...got.entries()].filter(([, g]) => g.received + g.damaged > 0)
          .map(([product_id, g]) => ({ product_id, received: g.received, damaged: g.damaged }));
        await post(`/inventory/transfers/${id}/receipts`, { lines }, { idempotencyKey: key });
        say('Receipt recorded.', 'ok');
        await reload();
      } catch (ex) { showError(err, ex); }
    }));
    receiveCard = h('div', scan, h('div.row', h('div.field', save)));
  }
  fill(main, tabsEl, h('h1', `Transfer #${t.number}`),
    h('p', `${locs.name[t.from_location_id]} → ${locs.name[t.to_location_id]} · `,
      h('span.pill#tr-status', STATUS[t.status] || t.status)),
    h('section.card', receiveCard,
      h('div.table-wrap', h('table#transfer-lines', h('thead', h('tr', h('th', 'SKU'), h('th', 'Product'),
        h('th.num', 'Sent'), h('th.num', 'Received'), h('th.num', 'Damaged'), h('th.num', 'Outstanding'),
        open ? h('th.num', 'Scanned now') : null, open ? h('th', 'Damaged now') : null)), body)),
      h('div.row', { style: { marginTop: '1rem' } },
        t.status === 'draft' ? act('Dispatch', `/inventory/transfers/${id}/dispatch`, '.primary#tr-dispatch-btn') : null,
        t.status === 'draft' || open ? act('Cancel transfer', `/inventory/transfers/${id}/cancel`, '#tr-cancel-btn') : null,
        h('a.btn', { href: '#/transfers' }, 'All transfers')), err));
  if (open) document.getElementById('rc-scan')?.focus();
  return undefined;
}
