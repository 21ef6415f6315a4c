// Locations in the back office: a transfer is created by scanning, dispatched and received with
// the scanner; then a stock count is scanned on a phone-sized screen and applied.

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

const onHand = async (productId, locationId) => {
  const page = await admin.get(`/inventory/levels?product_id=${productId}&location_id=${locationId}`);
  return page.items.length ? page.items[0].on_hand : 0;
};

async function scan(page, sel, code, times) {
  for (let i = 0; i < times; i += 1) {
    await page.locator(sel).fill(code);
    await page.locator(sel).press('Enter');
    await page.waitForTimeout(150);
  }
}

test('a transfer is created, dispatched and received in the back office, then a count is applied', async () => {
  const u = uniq();
  const back = await admin.post('/locations', { code: `BK-${u}`, name: `Backroom ${u}`, kind: 'warehouse' });
  const main = (await admin.get('/locations')).items.find((l) => l.is_default);
  const p = await makeProduct(admin, { name: `Crate ${u}`, price_cents: 500, stock: 10 });

  const ctx = await b.context({ width: 1200, height: 800 });
  const page = await ctx.newPage();
  const errors = watch(page);
  await page.goto('/admin/#/transfers');
  await signIn(page, ADMIN.email, ADMIN.password);
  await page.locator('#tr-from').waitFor();
  await page.locator('#tr-from').selectOption(main.id);
  await page.locator('#tr-to').selectOption(back.id);
  await scan(page, '#tr-scan', p.barcode, 3);
  await page.locator('#tr-lines tbody tr').first().waitFor();
  await shot(page, 'transfer-new');
  await page.locator('#tr-create').click();
  await page.locator('#tr-dispatch-btn').waitFor();
  await page.locator('#tr-dispatch-btn').click();
  await until(async () => (await page.locator('#tr-status').innerText()) === 'In transit');
  assert.equal(await onHand(p.id, main.id), 7);

  // Receive with the scanner: 3 units arrive.
  await scan(page, '#rc-scan', p.barcode, 3);
  assert.equal(await page.locator(`#transfer-lines tr[data-sku="${p.sku}"] td.scanned`).innerText(), '3');
  await shot(page, 'transfer-receive');
  await page.locator('#rc-save').click();
  await until(async () => (await page.locator('#tr-status').innerText()) === 'Received');
  assert.equal(await onHand(p.id, back.id), 3);

  // A count at the backroom on a phone: 2 found.
  await page.setViewportSize({ width: 390, height: 800 });
  await page.goto('/admin/#/counts');
  await page.locator('#ct-location').selectOption(back.id);
  await page.locator('#ct-start').click();
  await page.locator('#ct-scan').waitFor();
  await scan(page, '#ct-scan', p.barcode, 2);
  await page.locator(`#count-lines tr[data-sku="${p.sku}"]`).waitFor();
  await page.locator('#ct-save').click();
  await page.locator(`#count-lines tr[data-product="${p.id}"]`).waitFor();
  assert.equal(await page.locator(`#count-lines tr[data-sku="${p.sku}"]`).count(), 0, 'nothing left unsaved');
  await shot(page, 'count-phone');
  await page.locator('#ct-apply').click();
  await until(async () => (await page.locator('#ct-status').innerText()) === 'applied');
  assert.equal(await onHand(p.id, back.id), 2);
  assert.equal((await admin.get(`/products/${p.id}`)).stock_on_hand, 9);
  assert.deepEqual(errors, []);
  await ctx.close();
});
