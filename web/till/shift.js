// Register shifts at the till: open one with a counted float (keypad), join a colleague's,
// paid-in/paid-out, a blind close with a denominations counting helper, and the Z report,
// printable at 80 mm (shift.css). The till's sales carry the shift's register.

import { get, post, uuid, money, parseMoney, centsToInput } from '../assets/api.js';
import { h, fill, $, say, modal, errorBox, showError, field, busy } from '../assets/ui.js';

const REGISTER_KEY = 'till.register';
let shift = null;
let registers = [];
let bar = null;

/** The open shift the cashier is on (null when none). */
export const currentShift = () => shift;

/** The register a sale should name: the shift's. */
export const saleRegister = () => (shift ? shift.register_id : null);

const registerName = (id) => (registers.find((r) => r.id === id) || { name: 'Register' }).name;

function renderBar() {
  if (!bar) return;
  document.dispatchEvent(new CustomEvent('till:shift'));
  if (!shift) {
    fill(bar, h('span#shift-pill.pill.warn', 'No shift open'), ' ',
      h('button#open-shift.btn.small', { type: 'button', onclick: () => askToOpen() }, 'Open shift'));
    return;
  }
  fill(bar,
    h('span#shift-pill.pill.ok', { title: `Opened ${new Date(shift.opened_at).toLocaleTimeString()}` },
      `Shift #${shift.number} · ${registerName(shift.register_id)}`), ' ',
    h('button#cash-move.btn.small', { type: 'button', onclick: openMovement }, 'Pay in/out'), ' ',
    h('button#close-shift.btn.small', { type: 'button', onclick: openClose }, 'Close shift'));
}

/** Finds the cashier's open shift and mounts the header controls; asks to open one if none. */
export async function initShift(headerSlot) {
  bar = headerSlot;
  try {
    registers = (await get('/registers', { limit: 100 })).items.filter((r) => r.active);
  } catch (e) {
    if (e.code === 'network') { fill(bar, h('span.pill.warn', 'Shift unknown (offline)')); return; }
    throw e;
  }
  // A shop without registers sells without shifts: nothing to ask.
  if (!registers.length) { fill(bar); return; }
  try {
    shift = await get('/shifts/current');
  } catch (e) {
    if (e.status !== 404) throw e;
    shift = null;
  }
  renderBar();
  if (!shift) askToOpen();
}

/** A keypad for cash amounts: digits fill from the right (1 2 5 0 → 12.50). */
function keypad(onChange, start = 0) {
  let cents = start;
  const shown = h('output#float-display.keypad-display', { 'aria-live': 'polite' });
  const set = (c) => { cents = Math.max(0, Math.min(c, 99_999_999)); shown.textContent = money(cents); onChange(cents); };
  const key = (label, fn, id) => h(`button.btn.big${id ? `#${id}` : ''}`, { type: 'button', onclick: fn }, label);
  const digits = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '00', '0'].map((d) => key(d, () => set(cents * (d === '00' ? 100 : 10) + (d === '00' ? 0 : Number(d))), `key-${d}`));
  const pad = h('div.keypad', digits, key('⌫', () => set(Math.floor(cents / 10)), 'key-back'));
  set(cents);
  return { el: h('div', shown, pad), value: () => cents, set };
}

/** The open-shift dialog: pick a register, count the float on the keypad (or join its shift). */
export function askToOpen() {
  const err = errorBox();
  if (!registers.length) {
    say('No register is set up yet: an admin adds registers in the back office.', 'error', 0);
    return;
  }
  const saved = localStorage.getItem(REGISTER_KEY);
  const select = h('select#shift-register', { name: 'register' },
    registers.map((r) => h('option', { value: r.id, selected: r.id === saved }, r.name)));
  let float = 0;
  const pad = keypad((c) => { float = c; });
  const joinRow = h('div.notice.warn', { hidden: true });
  const checkRegister = async () => {
    joinRow.hidden = true;
    try {
      const open = await get('/shifts/current', { register_id: select.value });
      fill(joinRow, h('p', `Shift #${open.number} is already open on this register.`),
        h('button#join-shift.btn.primary', { type: 'button', onclick: () => join(open) }, 'Join that shift'));
      joinRow.hidden = false;
    } catch { /* none open: open one */ }
  };
  select.addEventListener('change', checkRegister);
  const openBtn = h('button#confirm-open.btn.ok.big', { type: 'submit' }, 'Open shift');
  const d = modal('Open a shift', h('form.modal-body', {
    onsubmit: (e) => {
      e.preventDefault();
      busy(openBtn, async () => {
        try {
          shift = await post('/shifts', { register_id: select.value, opening_float_cents: float });
          localStorage.setItem(REGISTER_KEY, select.value);
          d.close();
          renderBar();
          const diff = shift.opening_difference_cents;
          say(diff ? `Shift open. The float differs from the last close by ${money(diff)}.` : 'Shift open.', diff ? 'error' : 'info');
        } catch (ex) { showError(err, ex); }
      });
    },
  },
  field('Register', select),
  h('p', 'Count the cash in the drawer and key in the float:'),
  pad.el, joinRow, err,
  h('div.row', openBtn,
    h('button#skip-shift.btn.big', { type: 'button', onclick: () => d.close() }, 'Not now'))));
  checkRegister();

  async function join(open) {
    try {
      shift = await post(`/shifts/${open.id}/join`, {}, { idempotencyKey: uuid() });
      localStorage.setItem(REGISTER_KEY, open.register_id);
      d.close();
      renderBar();
      say(`Joined shift #${shift.number}.`);
    } catch (ex) { showError(err, ex); }
  }
}

function openMovement() {
  if (!shift) return;
  const err = errorBox();
  const kindIn = h('input', { type: 'radio', name: 'mtype', value: 'paid_in' });
  const kindOut = h('input', { type: 'radio', name: 'mtype', value: 'paid_out', checked: true });
  const amount = h('input#move-amount', { type: 'text', inputMode: 'decimal', autocomplete: 'off' });
  const reason = h('input#move-reason', { type: 'text', maxLength: 500, autocomplete: 'off' });
  const save = h('button#confirm-move.btn.primary.big', { type: 'submit' }, 'Record');
  const d = modal('Pay in / pay out', h('form.modal-body', {
    onsubmit: (e) => {
      e.preventDefault();
      const cents = parseMoney(amount.value);
      if (!cents || cents <= 0) { showError(err, 'Enter an amount like 5.00.'); amount.focus(); return; }
      if (!reason.value.trim()) { showError(err, 'Say why (e.g. "window cleaner").'); reason.focus(); return; }
      busy(save, async () => {
        try {
          const r = await post(`/shifts/${shift.id}/cash-movements`, {
            type: kindIn.checked ? 'paid_in' : 'paid_out', amount_cents: cents, reason: reason.value.trim(),
          });
          shift = r.shift;
          d.close();
          renderBar();
          say(`${r.movement.type === 'paid_in' ? 'Paid in' : 'Paid out'} ${money(r.movement.amount_cents)}.`);
        } catch (ex) {
          showError(err, ex.status === 409 && ex.code === 'conflict' ? 'The drawer does not hold that much cash.' : ex);
        }
      });
    },
  },
  h('fieldset', h('legend', 'Kind'), h('label.check', kindOut, 'Pay out (cash leaves the drawer)'), h('label.check', kindIn, 'Pay in (cash added)')),
  field('Amount', amount), field('Reason', reason), err, h('div.row', save)));
  amount.focus();
  return d;
}

// Notes and coins, largest first (cents).
const DENOMINATIONS = [10000, 5000, 2000, 1000, 500, 100, 25, 10, 5, 1];

/** The blind close: count each denomination (or key the total), never shown the expected cash. */
function openClose() {
  if (!shift) return;
  const err = errorBox();
  const counts = new Map();
  const total = h('output#count-total.count-total', money(0));
  const counted = h('input#counted-cash', { type: 'text', inputMode: 'decimal', autocomplete: 'off', value: '0.00' });
  const deposit = h('input#deposit', { type: 'text', inputMode: 'decimal', autocomplete: 'off', placeholder: '0.00' });
  const note = h('textarea#close-note', { rows: 2, maxLength: 1000 });
  const sum = () => [...counts].reduce((a, [d, n]) => a + d * n, 0);
  const rows = DENOMINATIONS.map((den) => {
    const input = h('input', {
      type: 'number', min: '0', max: '100000', inputMode: 'numeric', value: '', placeholder: '0',
      'aria-label': `Number of ${money(den)}`, dataset: { denomination: String(den) },
      oninput: (e) => {
        counts.set(den, Math.max(0, Math.floor(Number(e.target.value) || 0)));
        total.textContent = money(sum());
        counted.value = centsToInput(sum());
      },
    });
    return h('tr', h('td.num', money(den)), h('td', '×'), h('td', input));
  });
  const closeBtn = h('button#confirm-close.btn.danger.big', { type: 'submit' }, 'Close shift');
  const d = modal('Close the shift', h('form.modal-body', {
    onsubmit: (e) => {
      e.preventDefault();
      const c = parseMoney(counted.value);
      const dep = deposit.value.trim() ? parseMoney(deposit.value) : 0;
      if (c === null || c < 0) { showError(err, 'Enter the cash counted, like 250.00.'); counted.focus(); return; }
      if (dep === null || dep < 0 || dep > c) { showError(err, 'The deposit is at most the cash counted.'); deposit.focus(); return; }
      busy(closeBtn, async () => {
        try {
          const body = { counted_cash_cents: c, deposit_cents: dep };
          if (note.value.trim()) body.note = note.value.trim();
          const closed = await post(`/shifts/${shift.id}/close`, body);
          shift = null;
          d.close();
          renderBar();
          await showReport(closed.id);
        } catch (ex) {
          if (ex.status === 403 && ex.details && ex.details.difference_cents !== undefined) {
            showError(err, 'The count is too far from what the drawer should hold for a cashier to close. Count again, or ask a manager to close this shift.');
          } else showError(err, ex);
        }
      });
    },
  },
  h('p', 'Count the drawer. (The till does not show what it expects: count what is there.)'),
  h('table.denominations', h('caption.sr-only', 'Cash by denomination'), h('tbody', rows)),
  h('p', 'Total counted: ', total),
  field('Cash counted', counted, 'Filled in from the count above; you may type it instead.'),
  field('Deposit (taken to the bank)', deposit),
  field('Note', note), err, h('div.row', closeBtn)), { className: 'wide' });
  d.querySelector('input').focus();
  return d;
}

const line = (label, value, id) => h('tr', h('td', label), h(`td.num${id ? `#${id}` : ''}`, value));

/** The report as an 80 mm slip (the same element is printed). */
export function reportSlip(r, regName = registerName(r.shift.register_id)) {
  const s = r.shift;
  const tenders = ['cash', 'card', 'other'].map((m) => [
    line(`${m[0].toUpperCase()}${m.slice(1)} (${r.tenders[m].count})`, money(r.tenders[m].amount_cents)),
    r.tenders[m].refunds_cents ? line('  refunds', `−${money(r.tenders[m].refunds_cents)}`) : null,
  ]);
  const c = r.cash;
  return h('div.zreport', { 'aria-label': `${r.kind} report` },
    h('h2', r.kind === 'Z' ? 'Z REPORT' : 'X REPORT'),
    h('div.r-center', `Shift #${s.number} · ${regName}`),
    h('div.r-center', `${new Date(s.opened_at).toLocaleString()} –`),
    h('div.r-center', s.closed_at ? new Date(s.closed_at).toLocaleString() : 'still open'),
    h('div.r-sep'),
    h('table', h('tbody',
      line('Orders', String(r.sales.orders)),
      line('Gross', money(r.sales.gross_cents)),
      line('Discounts', `−${money(r.sales.discount_cents)}`),
      line('Tax', money(r.sales.tax_cents)),
      line('Refunds', `−${money(r.sales.refunds_cents)}`),
      h('tr.r-total', h('td', 'NET'), h('td.num#z-net', money(r.sales.net_cents))))),
    h('div.r-sep'),
    h('table', h('tbody', r.tax_by_rate.map((t) => line(`Tax ${t.tax_rate_bp / 100}% on ${money(t.taxable_cents)}`, money(t.tax_cents))))),
    h('div.r-sep'),
    h('table', h('tbody', tenders)),
    h('div.r-sep'),
    h('table', h('tbody',
      line('Opening float', money(c.opening_float_cents)),
      line('Cash sales', money(c.cash_sales_cents)),
      line('Cash refunds', `−${money(c.cash_refunds_cents)}`),
      line('Paid in', money(c.paid_in_cents)),
      line('Paid out', `−${money(c.paid_out_cents)}`),
      c.expected_cash_cents === null ? null : line('Expected cash', money(c.expected_cash_cents), 'z-expected'),
      c.counted_cash_cents === null ? null : line('Counted cash', money(c.counted_cash_cents), 'z-counted'),
      c.difference_cents === null ? null
        : h('tr.r-total', h('td', 'DIFFERENCE'), h('td.num#z-difference', money(c.difference_cents))),
      s.deposit_cents ? line('Deposit', money(s.deposit_cents)) : null)),
    h('div.r-sep'),
    h('table', h('tbody', r.by_user.map((u) => line(`${u.name || (u.user_id ? u.user_id.slice(0, 8) : '—')} (${u.orders})`, money(u.net_cents))))),
    h('div.r-center', `Printed ${new Date().toLocaleString()}`));
}

/** Prints the slip alone, at 80 mm (shift.css hides everything else). */
export function printSlip(slip) {
  let root = $('#zreport-print-root');
  if (!root) { root = h('div#zreport-print-root', { 'aria-hidden': 'true' }); document.body.append(root); }
  const copy = slip.cloneNode(true);
  for (const el of [copy, ...copy.querySelectorAll('[id]')]) el.removeAttribute('id');
  fill(root, copy);
  document.body.classList.add('print-zreport');
  const done = () => { document.body.classList.remove('print-zreport'); window.removeEventListener('afterprint', done); };
  window.addEventListener('afterprint', done);
  window.print();
}

async function showReport(id) {
  const r = await get(`/shifts/${id}/report`);
  const slip = reportSlip(r);
  const d = modal(`${r.kind} report`, h('div.modal-body',
    slip,
    h('div.row', { style: { marginTop: '1rem' } },
      h('button#print-report.btn.primary.big', { type: 'button', onclick: () => printSlip(slip) }, 'Print'),
      h('button#report-done.btn.big', { type: 'button', onclick: () => d.close() }, 'Done'))),
  { onClose: () => { if (!shift) askToOpen(); } });
  return d;
}
