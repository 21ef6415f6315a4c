// The shop's pickup-store picker: every active pickup location, with how many of each cart line it
// has. A shop with one location shows no picker (orders go to it as before).

import { get } from '../assets/api.js';
import { h, field } from '../assets/ui.js';

/** Builds the picker for the cart `lines` ({product_id, name, quantity}); `value()` is the chosen
 * location id, or null when there is nothing to choose. */
export async function pickupPicker(lines) {
  let stores = [];
  try { stores = (await get('/locations')).items || []; } catch { stores = []; }
  if (stores.length < 2) return { el: null, value: () => null };
  const stock = {};
  await Promise.all(lines.map(async (l) => {
    try {
      const a = await get('/inventory/availability', { product_id: l.product_id });
      stock[l.product_id] = Object.fromEntries(a.items.map((x) => [x.location_id, x.on_hand]));
    } catch { /* unknown: shown as such */ }
  }));
  const select = h('select#pickup-location', { name: 'location_id' },
    stores.map((s) => h('option', { value: s.id }, s.name)));
  const avail = h('ul#pickup-availability', { 'aria-live': 'polite' });
  const draw = () => avail.replaceChildren(...lines.map((l) => {
    const have = stock[l.product_id]?.[select.value];
    const tracked = stock[l.product_id] && Object.keys(stock[l.product_id]).length > 0;
    const ok = !tracked || (have ?? 0) >= l.quantity;
    return h('li', { dataset: { product: l.product_id } }, `${l.name}: `,
      tracked ? h(`span.pill.${ok ? 'ok' : 'bad'}`, ok ? `${have} in store` : `only ${have ?? 0} in store`)
        : h('span.pill.ok', 'available'));
  }));
  select.addEventListener('change', draw);
  draw();
  return { el: h('div', field('Pick up at', select), avail), value: () => select.value };
}
