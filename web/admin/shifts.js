// Back office: registers (admins add and rename them) and every shift with its cash difference;
// any shift's X or Z report opens as the same 80 mm slip the till prints.

import { get, post, patch, money } from '../assets/api.js';
import { h, fill, say, errorBox, showError, field, busy, modal } from '../assets/ui.js';
import { reportSlip, printSlip } from '../till/shift.js';

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

export async function pageShifts(main, tabsEl, user) {
  const registers = (await get('/registers', { limit: 100 })).items;
  const names = Object.fromEntries(registers.map((r) => [r.id, r.name]));
  const body = h('tbody');
  const more = h('button.btn', { type: 'button', hidden: true }, 'Load more');
  const status = h('select#sh-status', h('option', { value: '' }, 'Open and closed'),
    h('option', { value: 'open' }, 'Open'), h('option', { value: 'closed' }, 'Closed'));
  const reg = h('select#sh-register', h('option', { value: '' }, 'All registers'),
    registers.map((r) => h('option', { value: r.id }, r.name)));
  let cursor = null;
  const load = async (append) => {
    if (!append) cursor = null;
    const q = { limit: 50, cursor };
    if (status.value) q.status = status.value;
    if (reg.value) q.register_id = reg.value;
    const page = await get('/shifts', q);
    if (!append) body.replaceChildren();
    for (const s of page.items) body.append(shiftRow(s, names));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    if (!body.children.length) body.append(h('tr', h('td', { colspan: 8 }, h('span.muted', 'No shifts yet.'))));
  };
  more.addEventListener('click', () => busy(more, () => load(true)));
  status.addEventListener('change', () => load(false));
  reg.addEventListener('change', () => load(false));
  fill(main, tabsEl, h('h1', 'Shifts'),
    user.role === 'admin' ? registersCard(registers, () => pageShifts(main, tabsEl, user)) : null,
    h('div.row', { style: { marginBottom: '.75rem' } }, field('Status', status), field('Register', reg)),
    h('section.card', h('div.table-wrap', h('table#shifts-table',
      h('thead', h('tr', h('th', '#'), h('th', 'Register'), h('th', 'Opened'), h('th', 'Closed'),
        h('th.num', 'Float'), h('th.num', 'Opening diff.'), h('th.num', 'Expected'), h('th.num', 'Counted'),
        h('th.num', 'Difference'), h('th', h('span.sr-only', 'Report')))),
      body)), more));
  await load(false);
}

function diffCell(cents) {
  if (cents === null || cents === undefined) return h('td.num', '—');
  const cls = cents === 0 ? 'ok' : 'bad';
  return h('td.num', h(`span.pill.${cls}`, money(cents)));
}

function shiftRow(s, names) {
  return h('tr', { dataset: { shift: s.number } },
    h('td', s.number), h('td', names[s.register_id] || '—'),
    h('td', when(s.opened_at)),
    h('td', s.status === 'open' ? h('span.pill.warn', 'Open') : when(s.closed_at)),
    h('td.num', money(s.opening_float_cents)),
    diffCell(s.opening_difference_cents),
    h('td.num', s.expected_cash_cents === null ? '—' : money(s.expected_cash_cents)),
    h('td.num', s.counted_cash_cents === null ? '—' : money(s.counted_cash_cents)),
    diffCell(s.difference_cents),
    h('td', h('button.btn.small', {
      type: 'button', onclick: () => openReport(s, names),
    }, s.status === 'open' ? 'X report' : 'Z report', h('span.sr-only', ` of shift ${s.number}`))));
}

async function openReport(s, names) {
  try {
    const r = await get(`/shifts/${s.id}/report`);
    const slip = reportSlip(r, names[s.register_id] || 'Register');
    const d = modal(`${r.kind} report · shift ${s.number}`, h('div.modal-body', slip,
      h('div.row', { style: { marginTop: '1rem' } },
        h('button.btn.primary', { type: 'button', onclick: () => printSlip(slip) }, 'Print'),
        h('button.btn', { type: 'button', onclick: () => d.close() }, 'Close'))));
  } catch (e) { say(e.message, 'error'); }
}

function registersCard(registers, reload) {
  const err = errorBox();
  const name = h('input#reg-name', { name: 'name', required: true, maxLength: 100, autocomplete: 'off' });
  const add = h('button.btn.primary', { type: 'submit' }, 'Add register');
  return h('section.card', { style: { marginBottom: '1rem' } },
    h('h2', 'Registers'),
    h('ul', registers.map((r) => h('li', r.name, ' ',
      r.active ? h('span.pill.ok', 'Active') : h('span.pill', 'Inactive'), ' ',
      h('button.btn.small', {
        type: 'button',
        onclick: async () => {
          try {
            await patch(`/registers/${r.id}`, { active: !r.active }, { ifMatch: r.version });
            await reload();
          } catch (e) { say(e.message, 'error'); }
        },
      }, r.active ? 'Deactivate' : 'Reactivate')))),
    h('form.row', {
      onsubmit: (e) => {
        e.preventDefault();
        busy(add, async () => {
          try {
            await post('/registers', { name: name.value.trim() });
            say('Register added.', 'ok');
            await reload();
          } catch (ex) { showError(err, ex); }
        });
      },
    }, field('New register', name), h('div.field', add)), err);
}
