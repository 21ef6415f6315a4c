// Back office catalog tools: a product's photos (upload, reorder, delete) and the CSV import
// page (a dry run's report first, then the import itself). Kept apart from admin.js so each
// file stays small.

import { api, uuid } from '../assets/api.js';
import { h, fill, say, errorBox, showError, field, busy } from '../assets/ui.js';

const MAX_IMAGE_BYTES = 10 * 1024 * 1024;

/** The photos card of a product page; `onChange` gets the new image list. */
export function imagesCard(product, onChange) {
  let images = product.images || [];
  const err = errorBox();
  const list = h('ul.image-list#images', { 'aria-label': 'Photos' });
  const file = h('input#image-file', { type: 'file', accept: 'image/jpeg,image/png,image/webp' });
  const upload = h('button#upload-image.btn', { type: 'button' }, 'Upload photo');
  const base = `/products/${product.id}/images`;

  const draw = () => {
    list.replaceChildren();
    if (!images.length) list.append(h('li.muted', 'No photos yet. The first photo is the one the shop shows.'));
    images.forEach((img, i) => {
      const move = (to) => async (e) => busy(e.currentTarget, async () => {
        try {
          images = (await api('PATCH', `${base}/${img.id}`, { body: { position: to } }))
            .map((x) => ({ id: x.id, position: x.position, urls: x.urls }));
          draw();
          onChange(images);
        } catch (ex) { showError(err, ex); }
      });
      list.append(h('li.image-item', { dataset: { id: img.id } },
        h('img', { src: img.urls.thumb, alt: `Photo ${i + 1}`, loading: 'lazy', width: 96, height: 96 }),
        h('div.row',
          h('button.btn.small', { type: 'button', disabled: i === 0, onclick: move(i - 1), 'aria-label': `Move photo ${i + 1} earlier` }, '←'),
          h('button.btn.small', { type: 'button', disabled: i === images.length - 1, onclick: move(i + 1), 'aria-label': `Move photo ${i + 1} later` }, '→'),
          h('button.btn.small.danger', {
            type: 'button', 'aria-label': `Delete photo ${i + 1}`,
            onclick: async (e) => busy(e.currentTarget, async () => {
              try {
                await api('DELETE', `${base}/${img.id}`);
                images = images.filter((x) => x.id !== img.id).map((x, j) => ({ ...x, position: j }));
                draw();
                onChange(images);
                say('Photo deleted.', 'ok');
              } catch (ex) { showError(err, ex); }
            }),
          }, 'Delete'))));
    });
  };

  upload.addEventListener('click', () => busy(upload, async () => {
    showError(err, null);
    const f = file.files && file.files[0];
    if (!f) { showError(err, 'Choose a JPEG, PNG or WebP photo first.'); return; }
    if (f.size > MAX_IMAGE_BYTES) { showError(err, 'That photo is larger than 10 MB.'); return; }
    const form = new FormData();
    form.append('file', f, f.name);
    try {
      const img = await api('POST', base, { form, idempotencyKey: uuid() });
      images = [...images, { id: img.id, position: img.position, urls: img.urls }];
      file.value = '';
      draw();
      onChange(images);
      say('Photo added.', 'ok');
    } catch (ex) { showError(err, ex); }
  }));
  draw();
  return h('section.card', { 'aria-labelledby': 'photos-h' },
    h('h2#photos-h', 'Photos'), list,
    h('div.row', field('Photo (JPEG, PNG or WebP, up to 10 MB)', file), h('div.field', upload)), err);
}

function reportView(r) {
  const stat = (k, v, id) => h('div.card.stat', h('div.k', k), h(`div.v#${id}`, String(v)));
  return h('div.stack#import-report',
    h('div.stats', stat('New', r.created, 'rep-created'), stat('Changed', r.updated, 'rep-updated'),
      stat('Unchanged', r.unchanged, 'rep-unchanged'), stat('Errors', r.error_count, 'rep-errors')),
    r.errors.length ? h('div.table-wrap', h('table#import-errors',
      h('thead', h('tr', h('th.num', 'Row'), h('th', 'Column'), h('th', 'Problem'))),
      h('tbody', r.errors.map((e) => h('tr', h('td.num', String(e.row)), h('td', e.field), h('td', e.message)))))) : null,
    r.error_count > r.errors.length ? h('p.muted', `…and ${r.error_count - r.errors.length} more.`) : null);
}

/** The import page: choose a file, check it (dry run), then import it. */
export function pageImport(main, tabs) {
  const err = errorBox();
  const file = h('input#import-file', { type: 'file', accept: '.csv,text/csv' });
  const check = h('button#import-check.btn.primary', { type: 'button' }, 'Check file');
  const apply = h('button#import-apply.btn.primary', { type: 'button', disabled: true }, 'Import');
  const out = h('div#import-out', { 'aria-live': 'polite' });
  // One key per chosen file: a retried import is applied once.
  let key = null;
  file.addEventListener('change', () => { key = uuid(); apply.disabled = true; out.replaceChildren(); showError(err, null); });
  const send = (dryRun) => api('POST', '/products/import', {
    file: file.files[0], contentType: 'text/csv', query: { dry_run: dryRun ? 'true' : 'false' },
    idempotencyKey: dryRun ? null : key,
  });
  check.addEventListener('click', () => busy(check, async () => {
    showError(err, null);
    if (!file.files || !file.files[0]) { showError(err, 'Choose a CSV file first.'); return; }
    try {
      const r = await send(true);
      fill(out, h('h2', 'Check: nothing has been changed yet'), reportView(r),
        r.error_count ? h('p.notice.warn', 'Fix these rows and check the file again; nothing is imported while any row has a problem.')
          : h('p.notice', 'The file is fine. Import it to apply these changes.'));
      apply.disabled = r.error_count > 0;
    } catch (ex) { showError(err, ex); }
  }));
  apply.addEventListener('click', () => busy(apply, async () => {
    showError(err, null);
    try {
      const r = await send(false);
      fill(out, h('h2', r.applied ? 'Imported' : 'Not imported'), reportView(r));
      apply.disabled = true;
      if (r.applied) say(`Imported: ${r.created} new, ${r.updated} changed.`, 'ok');
    } catch (ex) { showError(err, ex); }
  }));
  fill(main, tabs('import'),
    h('h1', 'Import products'),
    h('div.card.stack',
      h('p', 'A CSV file with a header row. Columns: ', h('code', { style: { overflowWrap: 'anywhere' } }, 'sku,barcode,name,description,category,price_cents,tax_rate_bp,active,track_stock,low_stock_threshold,stock_on_hand'),
        '. Only sku and name are required; products are matched by SKU. The ',
        h('a#export-link', { href: '/api/v1/products/export.csv', download: 'products.csv' }, 'export'), ' has this format.'),
      h('div.row', field('CSV file', file), h('div.field', check), h('div.field', apply)),
      err, out));
}
