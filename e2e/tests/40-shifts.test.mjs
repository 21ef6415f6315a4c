// Register shifts: a cashier opens a shift with a float keyed on the keypad, sells with change,
// pays out, closes blind with the denominations counting helper, and sees (and can print) the
// Z report; the back office lists the shift with its difference and opens its report.
// Runs last: once a register exists, the till asks every cashier without a shift to open one.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, watch, shot, signIn, Api, ADMIN, makeProduct, until, uniq } from '../lib.mjs';

let b;
let admin;

before(async () => {
  b = await launch();
  admin = await Api.login(ADMIN.email, ADMIN.password);
});
after(async () => { await b.close(); });

test('a cashier opens a shift, sells with change, pays out, closes blind and sees the Z report', async () => {
  const u = uniq();
  const register = await admin.post('/registers', { name: `Front ${u}` });
  const cashier = { email: `shift-${u}@till.local`, password: 'shift-pass-123' };
  await admin.post('/users', { ...cashier, name: `Sam ${u}`, role: 'cashier' });
  const p = await makeProduct(admin, { name: `Shift Tea ${u}`, price_cents: 1250, tax_rate_bp: 0 });

  const ctx = await b.context({ width: 1024, height: 768 });
  const page = await ctx.newPage();
  const errors = watch(page);
  await page.goto('/till/');
  await signIn(page, cashier.email, cashier.password);

  // No shift yet: the till asks for one, with a keypad for the float.
  const dlg = page.locator('dialog[open]');
  await dlg.getByRole('heading', { name: 'Open a shift' }).waitFor();
  await dlg.locator('#shift-register').selectOption(register.id);
  for (const k of ['1', '0', '0', '00']) await dlg.locator(`#key-${k}`).click();
  assert.equal(await dlg.locator('#float-display').innerText(), '$100.00');
  await shot(page, 'shift-open');
  await dlg.locator('#confirm-open').click();
  await until(async () => /Shift #\d+/.test(await page.locator('#shift-pill').innerText()));
  const shiftText = await page.locator('#shift-pill').innerText();
  assert.match(shiftText, new RegExp(`Front ${u}`));

  // A 12.50 sale paid with a 20 note: 7.50 change.
  await page.locator('#scan').fill(p.barcode);
  await page.locator('#scan').press('Enter');
  await page.locator(`tr[data-sku="${p.sku}"]`).waitFor();
  await page.keyboard.press('F2');
  const pay = page.locator('dialog[open]');
  await pay.locator('#pay-tendered').fill('20.00');
  await pay.locator('#add-tender').click();
  assert.equal(await pay.locator('#change-due').innerText(), '$7.50');
  await pay.locator('#complete-sale').click();
  const receipt = page.locator('dialog[open]');
  await receipt.locator('#new-sale').waitFor();
  await shot(page, 'shift-sale-with-change');
  await receipt.locator('#new-sale').click();

  // Pay out 5.00 for the window cleaner.
  await page.locator('#cash-move').click();
  const move = page.locator('dialog[open]');
  await move.locator('#move-amount').fill('5.00');
  await move.locator('#move-reason').fill('Window cleaner');
  await shot(page, 'shift-pay-out');
  await move.locator('#confirm-move').click();
  await until(async () => !(await page.locator('dialog[open]').count()));

  // The sale landed in the shift (the order names its register).
  const orders = await admin.get('/orders?limit=20');
  const sold = orders.items.find((o) => o.lines.some((l) => l.product_id === p.id));
  assert.equal(sold.register_id, register.id);
  assert.ok(sold.shift_id);

  // Blind close: count 1 × 100, 1 × 5, 2 × 1, 2 × 0.25 = 107.50 (= 100 + 12.50 − 5).
  await page.locator('#close-shift').click();
  const close = page.locator('dialog[open]');
  await close.getByRole('heading', { name: 'Close the shift' }).waitFor();
  assert.doesNotMatch(await close.innerText(), /107\.50|expected/i, 'the close form never shows the expected cash');
  for (const [den, n] of [[10000, 1], [500, 1], [100, 2], [25, 2]]) {
    await close.locator(`input[data-denomination="${den}"]`).fill(String(n));
  }
  assert.equal(await close.locator('#count-total').innerText(), '$107.50');
  assert.equal(await close.locator('#counted-cash').inputValue(), '107.50');
  await shot(page, 'shift-close-count');
  await close.locator('#confirm-close').click();

  // The Z report: expected = counted, no difference.
  const z = page.locator('dialog[open]');
  await z.getByRole('heading', { name: 'Z report', exact: true }).waitFor();
  assert.equal(await z.locator('#z-expected').innerText(), '$107.50');
  assert.equal(await z.locator('#z-counted').innerText(), '$107.50');
  assert.equal(await z.locator('#z-difference').innerText(), '$0.00');
  assert.equal(await z.locator('#z-net').innerText(), '$12.50');
  await shot(page, 'shift-z-report');
  // Printed alone, 80 mm wide.
  await page.evaluate(() => { window.print = () => {}; });
  await z.locator('#print-report').click();
  await page.emulateMedia({ media: 'print' });
  const slip = page.locator('#zreport-print-root .zreport');
  assert.ok(await slip.isVisible());
  const width = await slip.evaluate((el) => el.getBoundingClientRect().width);
  assert.ok(Math.abs(width - 302) < 4, `80 mm is about 302 px, got ${width}`);
  assert.equal(await page.locator('main').isVisible(), false);
  await shot(page, 'shift-z-report-print');
  await page.emulateMedia({ media: 'screen' });

  // The API agrees, and reads the same Z report again.
  const shifts = await admin.get(`/shifts?register_id=${register.id}`);
  const s = shifts.items[0];
  assert.equal(s.status, 'closed');
  assert.equal(s.expected_cash_cents, 10750);
  assert.equal(s.paid_out_cents, 500);
  assert.equal(s.cash_sales_cents, 1250);
  const r1 = await admin.get(`/shifts/${s.id}/report`);
  const r2 = await admin.get(`/shifts/${s.id}/report`);
  assert.deepEqual(r1, r2);
  assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
  await ctx.close();

  // The back office lists the shift with its difference and opens its Z report.
  const actx = await b.context({ width: 1280, height: 800 });
  const apage = await actx.newPage();
  await apage.goto('/admin/#/shifts');
  await signIn(apage, ADMIN.email, ADMIN.password);
  const row = apage.locator(`#shifts-table tr[data-shift="${s.number}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /\$107\.50/);
  await shot(apage, 'admin-shifts');
  await row.getByRole('button', { name: /Z report/ }).click();
  await apage.locator('dialog[open] .zreport').waitFor();
  await shot(apage, 'admin-shift-z-report');
  await actx.close();
});
