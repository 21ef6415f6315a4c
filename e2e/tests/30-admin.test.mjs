// Back office: a manager edits a price and the shop shows it; a version conflict is explained in
// plain words; stock adjustments and the low-stock list; the sales report chart; staff accounts.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, watch, shot, signIn, Api, ADMIN, makeProduct, until, uniq, call } from '../lib.mjs';

const MANAGER = { email: 'manager@till.local', password: 'manager-pass-1' };
let b;
let admin;

before(async () => {
  b = await launch();
  admin = await Api.login(ADMIN.email, ADMIN.password);
});
after(async () => { await b.close(); });

async function backOffice(who) {
  const ctx = await b.context({ width: 1024, height: 768 });
  const page = await ctx.newPage();
  const errors = watch(page);
  await page.goto('/admin/');
  await signIn(page, who.email, who.password);
  await page.getByRole('heading', { name: 'Products', level: 1 }).waitFor();
  return { ctx, page, errors };
}

test('a manager changes a price and the shop shows the new price', async () => {
  const name = `Granola ${uniq()}`;
  const p = await makeProduct(admin, { name, price_cents: 500, tax_rate_bp: 0 });
  const { ctx, page, errors } = await backOffice(MANAGER);
  await page.getByLabel('Search').fill(name);
  await page.getByRole('link', { name }).click();
  await page.locator('#prod-price').waitFor();
  assert.equal(await page.locator('#prod-price').inputValue(), '5.00');
  await page.locator('#prod-price').fill('6.25');
  await page.locator('#save-product').click();
  await page.getByText('Saved.').waitFor();
  await shot(page, 'admin-product-edit');
  assert.equal((await admin.get(`/products/${p.id}`)).price_cents, 625);

  const shopCtx = await b.context({ width: 1024, height: 768 });
  const shop = await shopCtx.newPage();
  const shopErrors = watch(shop);
  // Catalog reads are cached for up to a second; the shop shows the new price once it expires.
  await until(async () => {
    await shop.goto(`/#/p/${p.id}`);
    await shop.locator('#product-price').waitFor();
    return (await shop.locator('#product-price').innerText()) === '$6.25';
  }, 5000, 300);
  await shot(shop, 'shop-product-new-price');
  assert.deepEqual(errors, []);
  assert.deepEqual(shopErrors, []);
  await ctx.close();
  await shopCtx.close();
});

test('a manager creates a product with opening stock; the till can scan it', async () => {
  const u = uniq();
  const { ctx, page, errors } = await backOffice(MANAGER);
  await page.locator('#new-product').click();
  await page.locator('#prod-name').fill(`Oolong ${u}`);
  await page.locator('#prod-sku').fill(`OOL-${u}`);
  await page.locator('#prod-barcode').fill(`77${Date.now().toString().slice(-10)}`);
  await page.locator('#prod-price').fill('7.5');
  await page.locator('#prod-tax').fill('8.25');
  await page.locator('#prod-initial').fill('12');
  await shot(page, 'admin-product-new');
  await page.locator('#save-product').click();
  await page.getByRole('heading', { name: `Oolong ${u}` }).waitFor();
  const p = await call('GET', `/products/lookup?code=OOL-${u}`);
  assert.equal(p.price_cents, 750);
  assert.equal(p.tax_rate_bp, 825);
  assert.equal(p.stock_on_hand, 12);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('an edit that lost a race says so plainly and can reload', async () => {
  const name = `Honey ${uniq()}`;
  const p = await makeProduct(admin, { name, price_cents: 899 });
  const { ctx, page } = await backOffice(MANAGER);
  await page.goto(`/admin/#/products/${p.id}`);
  await page.locator('#prod-price').waitFor();
  // Someone else saves first.
  await admin.patch(`/products/${p.id}`, { name: `${name} (wild)` }, { ifMatch: p.version });
  await page.locator('#prod-price').fill('9.49');
  await page.locator('#save-product').click();
  const alert = page.getByRole('alert');
  await alert.getByText('Someone else changed this product; reload to see their changes').waitFor();
  await shot(page, 'admin-product-conflict');
  await page.locator('#reload-product').click();
  await until(async () => (await page.locator('#prod-name').inputValue()) === `${name} (wild)`);
  assert.equal(await page.locator('#prod-price').inputValue(), '8.99');
  assert.equal((await admin.get(`/products/${p.id}`)).price_cents, 899, 'the stale edit was not applied');
  await ctx.close();
});

test('stock adjustments and the low-stock list', async () => {
  const name = `Matcha ${uniq()}`;
  const p = await makeProduct(admin, { name, price_cents: 1500, stock: 1 });
  const { ctx, page, errors } = await backOffice(MANAGER);
  await page.getByRole('link', { name: 'Stock' }).click();
  await page.locator(`#main tr[data-sku="${p.sku}"]`).waitFor(); // 1 ≤ threshold 2: low
  await page.locator('#adj-code').fill(p.sku);
  await page.locator('#adj-code').press('Enter');
  await page.locator('#adj-product').getByText(name).waitFor();
  await page.locator('#adj-delta').fill('-5');
  await page.getByRole('button', { name: 'Adjust stock' }).click();
  await page.getByText('That would take stock below zero').waitFor();
  await page.locator('#adj-delta').fill('24');
  await page.locator('#adj-note').fill('Pallet delivery');
  await page.getByRole('button', { name: 'Adjust stock' }).click();
  await until(async () => (await page.locator('#adj-onhand').innerText()) === '25');
  await until(async () => (await page.locator(`#main tr[data-sku="${p.sku}"]`).count()) === 0);
  await page.getByText('Pallet delivery').waitFor();
  await shot(page, 'admin-stock');
  assert.equal((await admin.get(`/products/${p.id}`)).stock_on_hand, 25);
  assert.deepEqual(errors.filter((e) => !e.includes('status of 409')), []); // the refused −5
  await ctx.close();
});

test('the sales report draws a bar per day', async () => {
  const { ctx, page, errors } = await backOffice(MANAGER);
  await page.getByRole('link', { name: 'Sales' }).click();
  await page.locator('.chart svg').waitFor();
  const bars = await page.locator('.chart svg rect.bar').count();
  assert.equal(bars, 14);
  await shot(page, 'admin-sales');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('an admin creates a staff account, changes its role and deactivates it', async () => {
  const u = uniq();
  const email = `pat-${u}@till.local`;
  const { ctx, page, errors } = await backOffice(ADMIN);
  await page.getByRole('link', { name: 'Staff' }).click();
  await page.getByLabel('Name').fill(`Pat ${u}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Role', { exact: true }).selectOption('cashier');
  await page.getByLabel('Password').fill('pat-pass-123');
  await page.getByRole('button', { name: 'Create account' }).click();
  const row = page.locator(`tr[data-email="${email}"]`);
  await row.waitFor();
  // The new cashier can sign in.
  await call('POST', '/auth/login', { body: { email, password: 'pat-pass-123' } });
  await row.getByLabel(`Role of Pat ${u}`).selectOption('staff');
  await page.getByText(`Pat ${u} is now staff.`).waitFor();
  await page.locator(`tr[data-email="${email}"]`).getByRole('button', { name: /Deactivate/ }).click();
  await page.locator(`tr[data-email="${email}"]`).getByText('Deactivated').waitFor();
  await shot(page, 'admin-staff');
  await assert.rejects(call('POST', '/auth/login', { body: { email, password: 'pat-pass-123' } }), /401/);
  assert.deepEqual(errors, []);
  await ctx.close();
});
