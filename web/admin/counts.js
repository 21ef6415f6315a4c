// Back office: stock counts. Pick a location, then scan the shelf: each scan counts one unit (or
// type a number). "Save" stamps the counted lines; the shop keeps selling meanwhile, and applying
// keeps every sale made after a line was saved. Laid out for a phone held in one hand.

import { get, post, api, uuid } from '../assets/api.js';
import { h, fill, say, errorBox, showError, field, busy } from '../assets/ui.js';
import { loadLocations, lookupCode } from './locations.js';

export async function pageCounts(main, tabsEl, id) {
  const locs = await loadLocations();
  if (id) return pageCount(main, tabsEl, locs, id);
  const page = await get('/inventory/counts', { limit: 50 });
  const where = h('select#ct-location', locs.items.filter((l) => l.active)
    .map((l) => h('option', { value: l.id }, locs.name[l.id])));
  const err = errorBox();
  const start = h('button.btn.primary#ct-start', { type: 'button' }, 'Start a count');
  start.addEventListener('click', () => busy(start, async () => {
    try {
      const c = await post('/inventory/counts', { location_id: where.value }, { idempotencyKey: uuid() });
      location.hash = `#/counts/${c.id}`;
    } catch (ex) { showError(err, ex); }
  }));
  const rows = page.items.map((c) => h('tr',
    h('td', h('a', { href: `#/counts/${c.id}` }, new Date(c.created_at).toLocaleString())),
    h('td', locs.name[c.location_id] || '—'), h('td', String(c.lines.length)), h('td', h('span.pill', c.status))));
  if (!rows.length) rows.push(h('tr', h('td', { colspan: 4 }, h('span.muted', 'No counts yet.'))));
  fill(main, tabsEl, h('h1', 'Stock counts'),
    h('section.card', { style: { marginBottom: '1rem' } }, h('div.row', field('Location', where), h('div.field', start)), err),
    h('section.card', h('div.table-wrap', h('table#counts-table',
      h('thead', h('tr', h('th', 'Started'), h('th', 'Location'), h('th', 'Lines'), h('th', 'Status'))),
      h('tbody', rows)))));
  return undefined;
}

async function pageCount(main, tabsEl, locs, id) {
  const c = await get(`/inventory/counts/${id}`);
  const reload = () => pageCount(main, tabsEl, locs, id);
  const err = errorBox();
  const open = c.status === 'open';
  // Not saved yet: product id → {sku, name, counted}.
  const pending = new Map();
  const body = h('tbody');
  const draw = () => {
    const saved = c.lines.map((l) => h('tr', { dataset: { product: l.product_id } },
      h('td', l.sku || l.product_id.slice(0, 8)), h('td.num', String(l.counted)),
      h('td.num', String(l.expected_at_count)), h('td.num', (l.delta > 0 ? '+' : '') + l.delta),
      h('td', h('span.pill.ok', 'saved'))));
    const unsaved = [...pending.values()].map((p) => {
      const n = h('input', { type: 'number', min: 0, value: p.counted, inputMode: 'numeric', 'aria-label': `Counted ${p.sku}`, style: { width: '5rem' } });
      n.addEventListener('change', () => { p.counted = Math.max(0, Number(n.value) || 0); });
      return h('tr', { dataset: { sku: p.sku } }, h('td', p.sku, h('br'), h('small.muted', p.name)), h('td.num', n),
        h('td', ''), h('td', ''), h('td', h('span.pill.warn', 'not saved')));
    });
    body.replaceChildren(...unsaved, ...saved);
  };
  const scan = h('input#ct-scan', {
    type: 'text', autocomplete: 'off', placeholder: 'Scan a product', enterKeyHint: 'enter',
    style: { fontSize: '1.25rem', width: '100%' },
  });
  scan.addEventListener('keydown', async (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    const code = scan.value.trim();
    scan.value = '';
    if (!code) return;
    const p = await lookupCode(code);
    if (!p) { say(`No product with the code ${code}.`, 'error'); return; }
    const line = pending.get(p.id) || { product_id: p.id, sku: p.sku, name: p.name, counted: 0 };
    line.counted += 1;
    pending.set(p.id, line);
    draw();
    scan.focus();
  });
  const save = h('button.btn.primary#ct-save', { type: 'button', style: { width: '100%' } }, 'Save counted lines');
  save.addEventListener('click', () => busy(save, async () => {
    if (!pending.size) return;
    try {
      const lines = [...pending.values()].map((p) => ({ product_id: p.product_id, counted: p.counted }));
      await api('PUT', `/inventory/counts/${id}/lines`, { body: { lines } });
      say('Saved.', 'ok');
      await reload();
    } catch (ex) { showError(err, ex); }
  }));
  const apply = h('button.btn#ct-apply', { type: 'button', style: { width: '100%' } }, 'Apply count to stock');
  apply.addEventListener('click', () => busy(apply, async () => {
    try {
      await post(`/inventory/counts/${id}/apply`, {}, { idempotencyKey: uuid() });
      say('Count applied.', 'ok');
      await reload();
    } catch (ex) { showError(err, ex); }
  }));
  await Promise.all(c.lines.map(async (l) => {
    try { l.sku = (await get(`/products/${l.product_id}`)).sku; } catch { /* inactive: id shown */ }
  }));
  draw();
  fill(main, tabsEl, h('h1', `Count · ${locs.name[c.location_id] || ''}`),
    h('p', h('span.pill#ct-status', c.status)),
    h('section.card.count-card', { style: { maxWidth: '32rem' } },
      open ? field('Scan', scan) : null,
      h('div.table-wrap', h('table#count-lines', h('thead', h('tr', h('th', 'Product'), h('th.num', 'Counted'),
        h('th.num', 'Expected'), h('th.num', 'Difference'), h('th', h('span.sr-only', 'State')))), body)),
      open ? h('div', { style: { display: 'grid', gap: '.5rem', marginTop: '1rem' } }, save, apply) : null,
      h('p', h('a', { href: '#/counts' }, 'All counts')), err));
  if (open) scan.focus();
  return undefined;
}
