// Catalog media and bulk import: a manager uploads a photo in the back office and the shop shows
// it (lazy-loaded thumbnail with the medium variant in srcset); a catalog imported through the
// back office's import page, after a check that names the bad row.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { launch, watch, shot, signIn, Api, ADMIN, makeProduct, until, uniq } from '../lib.mjs';

const MANAGER = { email: 'manager@till.local', password: 'manager-pass-1' };
let b;
let admin;

before(async () => {
  b = await launch();
  admin = await Api.login(ADMIN.email, ADMIN.password);
});
after(async () => { await b.close(); });

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A w×h RGB PNG: a diagonal gradient, so the photo is visibly a picture. */
function png(w, h) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    for (let x = 0; x < w; x++) {
      raw[row + 1 + x * 3] = (x * 255) / w;
      raw[row + 2 + x * 3] = (y * 255) / h;
      raw[row + 3 + x * 3] = 160;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

async function backOffice() {
  const ctx = await b.context({ width: 1024, height: 900 });
  const page = await ctx.newPage();
  const errors = watch(page);
  await page.goto('/admin/');
  await signIn(page, MANAGER.email, MANAGER.password);
  await page.getByRole('heading', { name: 'Products', level: 1 }).waitFor();
  return { ctx, page, errors };
}

test('a manager uploads a product photo in the back office and the shop shows it', async () => {
  const name = `Sourdough ${uniq()}`;
  const p = await makeProduct(admin, { name, price_cents: 650 });
  const { ctx, page, errors } = await backOffice();
  await page.goto(`/admin/#/products/${p.id}`);
  await page.getByRole('heading', { name: 'Photos' }).waitFor();
  await page.locator('#image-file').setInputFiles({ name: 'loaf.png', mimeType: 'image/png', buffer: png(1200, 800) });
  await page.locator('#upload-image').click();
  await page.getByText('Photo added.').waitFor();
  await page.locator('#images img').first().waitFor();
  await shot(page, 'admin-product-photos');
  const stored = await admin.get(`/products/${p.id}`);
  assert.equal(stored.images.length, 1);
  assert.match(stored.thumb_url, /^\/media\/[0-9a-f]{32}-thumb\.webp$/);
  // Saving the form after a photo change is not a false version conflict.
  await page.locator('#prod-price').fill('6.75');
  await page.locator('#save-product').click();
  await page.getByText('Saved.').waitFor();

  const shopCtx = await b.context({ width: 1024, height: 768 });
  const shop = await shopCtx.newPage();
  const shopErrors = watch(shop);
  await until(async () => {
    await shop.goto(`/#/p/${p.id}`);
    await shop.getByRole('heading', { name, level: 1 }).waitFor();
    return (await shop.locator('img.thumb.photo').count()) === 1;
  }, 5000, 300);
  const photo = shop.locator('img.thumb.photo');
  await until(() => photo.evaluate((img) => img.complete && img.naturalWidth > 0), 5000, 100);
  assert.equal(await photo.getAttribute('alt'), name);
  assert.match(await photo.getAttribute('srcset'), /-thumb\.webp 256w, \/media\/[0-9a-f]{32}-medium\.webp 800w$/);
  await shot(shop, 'shop-product-photo');
  // The list shows it too, lazy-loaded.
  await shop.goto(`/#/search/${encodeURIComponent(name)}`);
  const tile = shop.locator('.product-tile', { hasText: name }).locator('img.thumb.photo');
  await tile.waitFor();
  assert.equal(await tile.getAttribute('loading'), 'lazy');
  await shot(shop, 'shop-list-photos');
  assert.deepEqual(errors, []);
  assert.deepEqual(shopErrors, []);
  await ctx.close();
  await shopCtx.close();
});

test('a catalog imported through the back office: the check names a bad row, then the import applies', async () => {
  const u = uniq();
  const header = 'sku,name,price_cents,tax_rate_bp,category,stock_on_hand';
  const rows = [
    `IMP-${u}-1,Imported oat milk ${u},289,825,Imported ${u},12`,
    `IMP-${u}-2,"Imported rye, dark ${u}",450,0,Imported ${u},`,
    `IMP-${u}-3,Imported honey ${u},899,825,,3`,
  ];
  const bad = [header, rows[0], `IMP-${u}-2,Imported rye ${u},4.50,0,,`, rows[2]].join('\n');
  const good = [header, ...rows].join('\n');
  const { ctx, page, errors } = await backOffice();
  assert.equal(await page.locator('#export-csv').getAttribute('href'), '/api/v1/products/export.csv');
  await page.locator('#import-csv').click();
  await page.getByRole('heading', { name: 'Import products' }).waitFor();

  await page.locator('#import-file').setInputFiles({ name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
  await page.locator('#import-check').click();
  await page.locator('#import-errors').waitFor();
  const cells = await page.locator('#import-errors tbody tr').first().locator('td').allInnerTexts();
  assert.deepEqual(cells.slice(0, 2), ['2', 'price_cents']);
  assert.equal(await page.locator('#import-apply').isDisabled(), true);
  await shot(page, 'admin-import-errors');

  await page.locator('#import-file').setInputFiles({ name: 'good.csv', mimeType: 'text/csv', buffer: Buffer.from(good) });
  await page.locator('#import-check').click();
  await until(async () => (await page.locator('#rep-created').innerText()) === '3', 5000, 100);
  assert.equal(await page.locator('#import-errors').count(), 0);
  // The check wrote nothing.
  const before = await admin.get(`/products/lookup?code=IMP-${u}-1`).catch((e) => e);
  assert.equal(before.status, 404);
  await shot(page, 'admin-import-check');

  await page.locator('#import-apply').click();
  await page.getByRole('heading', { name: 'Imported' }).waitFor();
  await shot(page, 'admin-import-done');
  const oat = await admin.get(`/products/lookup?code=IMP-${u}-1`);
  assert.equal(oat.price_cents, 289);
  assert.equal(oat.stock_on_hand, 12);
  const rye = await admin.get(`/products/lookup?code=IMP-${u}-2`);
  assert.equal(rye.name, `Imported rye, dark ${u}`);
  assert.equal(rye.category_id, oat.category_id);
  assert.deepEqual(errors, []);
  await ctx.close();
});
