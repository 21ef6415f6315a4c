// Back office: webhooks (admin). Add an endpoint (its secret is shown once), see its deliveries
// and every attempt, retry one, send a test ping, rotate the secret, pause or re-enable it.

import { api, get, uuid } from '../assets/api.js';
import {
  h, fill, say, errorBox, showError, markFields, field, busy, modal, ago,
} from '../assets/ui.js';

const TYPES = ['order.created', 'order.updated', 'order.paid', 'order.refunded', 'order.cancelled',
  'stock.low', 'inventory.adjusted', 'transfer.updated', 'shift.opened', 'shift.closed', 'product.updated'];

function secretBox(title, secret, extra) {
  const input = h('input.mono', { value: secret, readOnly: true, 'aria-label': 'Signing secret', onfocus: (e) => e.target.select() });
  modal(title, h('div',
    h('p', 'Copy this signing secret into the receiving system now. It is not shown again.'),
    input,
    extra ? h('p.muted', extra) : null,
    h('p', h('button.btn', { type: 'button', onclick: () => navigator.clipboard?.writeText(secret).then(() => say('Copied.', 'ok')) }, 'Copy'))));
}

function statusPill(ep) {
  if (ep.active) return h('span.pill.ok', 'Active');
  return h('span.pill.warn', { title: ep.disabled_reason || '' }, ep.disabled_reason ? 'Disabled' : 'Paused');
}

export async function pageWebhooks(main, tabs, id) {
  if (id) { await pageEndpoint(main, tabs, id); return; }
  const body = h('tbody');
  const load = async () => {
    const page = await get('/webhooks', { limit: 100 });
    body.replaceChildren(...page.items.map((ep) => h('tr', { dataset: { url: ep.url } },
      h('td', h('a', { href: `#/webhooks/${ep.id}` }, ep.url)),
      h('td', ep.events.join(', ')),
      h('td', statusPill(ep), ep.disabled_reason ? h('div.muted.small', ep.disabled_reason) : null))));
    if (!page.items.length) body.append(h('tr', h('td', { colSpan: 3 }, h('span.muted', 'No endpoints yet.'))));
  };
  const err = errorBox();
  const url = h('input#w-url', { type: 'url', name: 'url', required: true, placeholder: 'https://example.com/till-events', autocomplete: 'off' });
  const desc = h('input#w-desc', { name: 'description', autocomplete: 'off' });
  const boxes = TYPES.map((t) => h('label.check', h('input', { type: 'checkbox', name: 'events', value: t, checked: t.startsWith('order.') }), ` ${t}`));
  const submit = h('button.btn.primary', { type: 'submit' }, 'Add endpoint');
  const form = h('form.card', {
    onsubmit: async (e) => {
      e.preventDefault();
      showError(err, null);
      const events = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
      await busy(submit, async () => {
        try {
          const ep = await api('POST', '/webhooks', { body: { url: url.value.trim(), events, description: desc.value.trim() }, idempotencyKey: uuid() });
          form.reset();
          markFields(form, null);
          secretBox('Endpoint added', ep.secret);
          await load();
        } catch (ex) { markFields(form, ex); showError(err, ex); }
      });
    },
  }, h('h2', 'New endpoint'), field('URL', url, 'HTTPS. Till signs every request (Till-Signature).'), field('Description', desc),
  h('fieldset', h('legend', 'Events'), h('div.checks', boxes)), err, submit);
  fill(main, tabs('webhooks'), h('h1', 'Webhooks'),
    h('div.split',
      h('section.card', h('div.table-wrap', h('table#webhooks',
        h('thead', h('tr', h('th', 'Endpoint'), h('th', 'Events'), h('th', 'Status'))), body))),
      form));
  await load();
}

async function pageEndpoint(main, tabs, id) {
  let ep = await get(`/webhooks/${id}`);
  const head = h('div');
  const rows = h('tbody');
  const filter = h('select#d-status', { 'aria-label': 'Show deliveries' },
    ['', 'pending', 'succeeded', 'failed'].map((s) => h('option', { value: s }, s || 'All deliveries')));
  const more = h('button.btn', { type: 'button', hidden: true }, 'Load more');
  let cursor = null;
  const loadDeliveries = async (append) => {
    if (!append) cursor = null;
    const page = await get(`/webhooks/${id}/deliveries`, { status: filter.value, limit: 50, cursor });
    if (!append) rows.replaceChildren();
    rows.append(...page.items.map(deliveryRow));
    if (!append && !page.items.length) rows.append(h('tr', h('td', { colSpan: 6 }, h('span.muted', 'No deliveries.'))));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  const act = (label, fn, cls = '') => h(`button.btn.small${cls}`, { type: 'button', onclick: (e) => busy(e.currentTarget, async () => { try { await fn(); } catch (ex) { say(ex.message, 'error'); } }) }, label);
  const renderHead = () => fill(head,
    h('h1', ep.url), h('p', statusPill(ep), ' ', ep.description || ''),
    ep.disabled_reason ? h('p.notice.warn', `Disabled: ${ep.disabled_reason}`) : null,
    h('p.muted', `Events: ${ep.events.join(', ')}`),
    ep.previous_valid_until ? h('p.muted', `The previous secret also signs until ${new Date(ep.previous_valid_until).toLocaleString()}.`) : null,
    h('div.actions',
      act('Send test ping', async () => { await api('POST', `/webhooks/${id}/test`, { idempotencyKey: uuid() }); say('Ping queued.', 'ok'); setTimeout(() => loadDeliveries(false), 1500); }),
      act('Rotate secret', async () => {
        const r = await api('POST', `/webhooks/${id}/rotate-secret`, { idempotencyKey: uuid() });
        secretBox('New signing secret', r.secret, `The old secret keeps signing until ${new Date(r.previous_valid_until).toLocaleString()}.`);
        ep = await get(`/webhooks/${id}`); renderHead();
      }),
      act(ep.active ? 'Pause' : 'Enable', async () => {
        ep = await api('PATCH', `/webhooks/${id}`, { body: { active: !ep.active }, ifMatch: ep.version });
        say(ep.active ? 'Endpoint enabled.' : 'Endpoint paused.', 'ok'); renderHead();
      }),
      act('Delete', async () => {
        if (!window.confirm('Delete this endpoint and its delivery log?')) return;
        await api('DELETE', `/webhooks/${id}`); say('Endpoint deleted.', 'ok'); window.location.hash = '#/webhooks';
      }, '.danger')));
  filter.addEventListener('change', () => loadDeliveries(false));
  more.addEventListener('click', () => busy(more, () => loadDeliveries(true)));
  renderHead();
  fill(main, tabs('webhooks'), h('p', h('a', { href: '#/webhooks' }, '← Webhooks')), head,
    h('section.card', h('div.toolbar', h('h2', 'Deliveries'), filter, act('Refresh', () => loadDeliveries(false))),
      h('div.table-wrap', h('table#deliveries',
        h('thead', h('tr', h('th', 'Event'), h('th', 'Status'), h('th', 'Attempts'), h('th', 'Last answer'), h('th', 'When'), h('th', h('span.sr-only', 'Actions')))),
        rows)), more));
  await loadDeliveries(false);
}

function deliveryRow(d) {
  const pill = { succeeded: 'span.pill.ok', failed: 'span.pill.bad', pending: 'span.pill.warn' }[d.status] || 'span.pill';
  const retry = d.status === 'succeeded' ? null : h('button.btn.small', {
    type: 'button',
    onclick: (e) => busy(e.currentTarget, async () => {
      try { await api('POST', `/webhook-deliveries/${d.id}/retry`, { idempotencyKey: uuid() }); say('Sent again.', 'ok'); } catch (ex) { say(ex.message, 'error'); }
    }),
  }, 'Retry');
  return h('tr', { dataset: { event: d.event_type } },
    h('td', h('button.linklike', { type: 'button', onclick: () => showAttempts(d.id) }, `${d.event_type} #${d.event_sequence}`)),
    h('td', h(pill, d.status)),
    h('td', String(d.attempts)),
    h('td', d.last_status_code ? String(d.last_status_code) : (d.last_error || '—')),
    h('td', d.delivered_at ? ago(d.delivered_at) : (d.next_attempt_at ? `next ${new Date(d.next_attempt_at).toLocaleTimeString()}` : '')),
    h('td', retry));
}

async function showAttempts(id) {
  const d = await get(`/webhook-deliveries/${id}`);
  modal(`Delivery of ${d.event_type} #${d.event_sequence}`, h('div.table-wrap', h('table#attempts',
    h('thead', h('tr', h('th', '#'), h('th', 'Started'), h('th', 'Took'), h('th', 'Answer'), h('th', 'Body'))),
    h('tbody', d.attempt_log.map((a) => h('tr',
      h('td', String(a.attempt)), h('td', new Date(a.started_at).toLocaleString()), h('td', `${a.duration_ms} ms`),
      h('td', a.status_code ? String(a.status_code) : (a.error || '')),
      h('td', h('code.small', (a.response_excerpt || '').slice(0, 200)))))))));
}
