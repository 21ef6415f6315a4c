// Back office: locations (admins add, rename and close them) and the stock at each location.

import { get, post, patch, allPages } from '../assets/api.js';
import { h, fill, say, errorBox, showError, field, busy } from '../assets/ui.js';

/** Every location the caller may see, default first; and a name lookup. */
export async function loadLocations() {
  const items = (await get('/locations')).items || [];
  return { items, name: Object.fromEntries(items.map((l) => [l.id, `${l.name} (${l.code})`])) };
}

export async function pageLocations(main, tabsEl, user) {
  const locs = await loadLocations();
  const reload = () => pageLocations(main, tabsEl, user);
  const rows = locs.items.map((l) => h('tr', { dataset: { location: l.code } },
    h('td', l.code), h('td', l.name, l.is_default ? h('span.pill', ' default') : null),
    h('td', l.kind), h('td', l.pickup_enabled ? 'Yes' : 'No'),
    h('td', l.active ? h('span.pill.ok', 'Active') : h('span.pill', 'Inactive')),
    h('td', user.role === 'admin' && !l.is_default ? h('button.btn.small', {
      type: 'button',
      onclick: async () => {
        try {
          await patch(`/locations/${l.id}`, { active: !l.active }, { ifMatch: l.version });
          await reload();
        } catch (e) { say(e.message, 'error'); }
      },
    }, l.active ? 'Deactivate' : 'Reactivate') : null)));
  const where = h('select#lv-location', locs.items.map((l) => h('option', { value: l.id }, locs.name[l.id])));
  const stock = h('tbody');
  const showStock = async () => {
    const levels = await allPages('/inventory/levels', { location_id: where.value, limit: 100 });
    const products = await allPages('/products', { limit: 100, include_inactive: true });
    const byId = Object.fromEntries(products.map((p) => [p.id, p]));
    stock.replaceChildren(...levels.map((lv) => h('tr',
      h('td', byId[lv.product_id]?.sku || lv.product_id), h('td', byId[lv.product_id]?.name || ''),
      h('td.num', String(lv.on_hand)), h('td.num', String(lv.in_transit_in)))));
    if (!levels.length) stock.append(h('tr', h('td', { colspan: 4 }, h('span.muted', 'Nothing here yet.'))));
  };
  where.addEventListener('change', () => showStock().catch((e) => say(e.message, 'error')));
  fill(main, tabsEl, h('h1', 'Locations'),
    h('section.card', { style: { marginBottom: '1rem' } }, h('div.table-wrap', h('table#locations-table',
      h('thead', h('tr', h('th', 'Code'), h('th', 'Name'), h('th', 'Kind'), h('th', 'Pickup'), h('th', 'Status'),
        h('th', h('span.sr-only', 'Actions')))),
      h('tbody', rows))),
    user.role === 'admin' ? addForm(reload) : null),
    h('section.card', h('h2', 'Stock by location'), field('Location', where),
      h('div.table-wrap', h('table#levels-table',
        h('thead', h('tr', h('th', 'SKU'), h('th', 'Product'), h('th.num', 'On hand'), h('th.num', 'On the way'))),
        stock))));
  await showStock();
}

function addForm(reload) {
  const err = errorBox();
  const code = h('input#loc-code', { name: 'code', required: true, maxLength: 32, autocomplete: 'off' });
  const name = h('input#loc-name', { name: 'name', required: true, maxLength: 100, autocomplete: 'off' });
  const kind = h('select#loc-kind', { name: 'kind' }, h('option', { value: 'store' }, 'Store'),
    h('option', { value: 'warehouse' }, 'Warehouse'));
  const pickup = h('input#loc-pickup', { type: 'checkbox', name: 'pickup_enabled' });
  const add = h('button.btn.primary', { type: 'submit' }, 'Add location');
  return h('form.row#location-form', {
    style: { marginTop: '1rem' },
    onsubmit: (e) => {
      e.preventDefault();
      busy(add, async () => {
        try {
          await post('/locations', {
            code: code.value.trim(), name: name.value.trim(), kind: kind.value, pickup_enabled: pickup.checked,
          });
          say('Location added.', 'ok');
          await reload();
        } catch (ex) { showError(err, ex); }
      });
    },
  }, field('Code', code), field('Name', name), field('Kind', kind), field('Customers can pick up here', pickup),
  h('div.field', add), err);
}

/** The product whose barcode or SKU is `code`, or null. */
export async function lookupCode(code) {
  try { return await get('/products/lookup', { code }); } catch { return null; }
}
