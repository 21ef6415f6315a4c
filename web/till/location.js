// The till's location in the header: where its sales take stock. That is the location of the
// open shift's register, or the shop's default location when there is no register (or the
// register names none). Redrawn whenever the shift changes.

import { get } from '../assets/api.js';
import { h, fill } from '../assets/ui.js';
import { currentShift } from './shift.js';

let pill = null;
let locations = [];
let registers = [];

function render() {
  if (!pill || !locations.length) return;
  const shift = currentShift();
  const register = shift && registers.find((r) => r.id === shift.register_id);
  const loc = locations.find((l) => l.id === register?.location_id) || locations.find((l) => l.is_default);
  if (!loc) return;
  pill.hidden = false;
  fill(pill, h('span', { title: 'Sales take stock here' }, `📍 ${loc.name}`));
}

export async function initLocation(slot) {
  pill = slot;
  try {
    [locations, registers] = await Promise.all([
      get('/locations').then((r) => r.items || []),
      get('/registers', { limit: 100 }).then((r) => r.items || []).catch(() => []),
    ]);
  } catch { return; /* offline: the header just shows no location */ }
  render();
  document.addEventListener('till:shift', render);
}
