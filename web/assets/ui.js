// Small DOM helpers shared by every page: element builder, live messages, the sign-in form.

import { currentUser, login, logout, setUnauthorizedHandler, session } from './api.js';

/** h('button.big#pay', {onclick, type:'button'}, 'Pay') — attributes, properties and children. */
export function h(tag, attrs = {}, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(tag);
  const el = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
    }
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = {};
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** A status line announced to screen readers. kind: 'info' | 'ok' | 'error'. */
export function say(msg, kind = 'info', timeout = 6000) {
  let box = $('#toasts');
  if (!box) {
    box = h('div#toasts.toasts', { role: 'status', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const t = h(`div.toast.${kind}`, msg);
  box.append(t);
  if (timeout) setTimeout(() => t.remove(), timeout);
  return t;
}

/** An inline error area inside forms: role=alert so it is read out. */
export function errorBox() {
  return h('p.form-error', { role: 'alert', hidden: true });
}
export function showError(box, err) {
  if (!err) { box.hidden = true; box.textContent = ''; return; }
  box.hidden = false;
  box.textContent = typeof err === 'string' ? err : err.message;
}

/** Marks fields from a 422 `details.fields` on a form whose inputs have name=… */
export function markFields(form, err) {
  for (const el of $$('[aria-invalid]', form)) el.removeAttribute('aria-invalid');
  for (const el of $$('.field-error', form)) el.remove();
  const fields = (err && err.fields) || {};
  for (const [f, msgs] of Object.entries(fields)) {
    const input = form.querySelector(`[name="${CSS.escape(f)}"]`);
    if (!input) continue;
    input.setAttribute('aria-invalid', 'true');
    const id = `${input.id || f}-err`;
    input.setAttribute('aria-describedby', id);
    input.closest('label, .field')?.append(h('span.field-error', { id }, [].concat(msgs).join(', ')));
  }
}

/** A labelled input. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div.field', h('label', { for: id }, label), input, hint ? h('small.hint', hint) : null);
}

/** Button that shows a busy state while `fn` runs and cannot be double-clicked. */
export async function busy(button, fn) {
  if (button.dataset.busy) return undefined;
  button.dataset.busy = '1';
  button.setAttribute('aria-busy', 'true');
  const was = button.disabled;
  button.disabled = true;
  try {
    return await fn();
  } finally {
    delete button.dataset.busy;
    button.removeAttribute('aria-busy');
    button.disabled = was;
  }
}

/**
 * Ensures someone with one of `roles` is signed in; renders a sign-in form into `main` until then.
 * Resolves with the user.
 */
export async function requireUser(main, { roles, title, hint, allowRegister = false } = {}) {
  let user = null;
  try {
    user = await currentUser();
  } catch (e) {
    fill(main, h('p.form-error', { role: 'alert' }, e.message));
    throw e;
  }
  if (user && (!roles || roles.includes(user.role)) && session.csrf) return user;
  return new Promise((resolve) => {
    fill(main, signInForm({ title, hint, wrongRole: user ? user.role : null, roles, onDone: resolve, allowRegister }));
    $('#login-email', main)?.focus();
  });
}

function signInForm({ title, hint, roles, onDone, wrongRole }) {
  const err = errorBox();
  if (wrongRole) showError(err, `That account (${wrongRole}) can't use this screen. Sign in with another.`);
  const email = h('input#login-email', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input#login-password', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button.btn.primary.big', { type: 'submit' }, 'Sign in');
  const form = h('form.card.login', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      showError(err, null);
      await busy(submit, async () => {
        try {
          const u = await login(email.value.trim(), password.value);
          if (roles && !roles.includes(u.role)) {
            await logout();
            showError(err, `That account (${u.role}) can't use this screen.`);
            return;
          }
          onDone(u);
        } catch (e) {
          showError(err, e);
          password.select();
        }
      });
    },
  },
  h('h1', title || 'Sign in'),
  hint ? h('p.muted', hint) : null,
  field('Email', email),
  field('Password', password),
  err,
  submit);
  return form;
}

/** Header user box: name + sign out. Call after sign-in. */
export function userBox(user, onSignedOut) {
  return h('div.userbox',
    h('span.who', { title: user.email }, `${user.name} · ${user.role}`),
    h('button.btn.small', {
      type: 'button',
      onclick: async () => { await logout(); if (onSignedOut) onSignedOut(); else location.reload(); },
    }, 'Sign out'));
}

/** When the server says the session ended, show the sign-in form again (once). */
export function reloginOn401() {
  let shown = false;
  setUnauthorizedHandler(() => {
    if (shown) return;
    shown = true;
    session.csrf = null;
    say('Your session has ended. Please sign in again.', 'error', 0);
    setTimeout(() => location.reload(), 1500);
  });
}

/** A modal <dialog>; resolves when closed. Escape closes it (native). */
export function modal(title, body, { onClose, className } = {}) {
  const d = h(`dialog.modal${className ? `.${className}` : ''}`, { 'aria-labelledby': 'modal-title' },
    h('div.modal-head', h('h2#modal-title', title),
      h('button.btn.small.ghost', { type: 'button', 'aria-label': 'Close', onclick: () => d.close() }, '✕')),
    body);
  document.body.append(d);
  d.addEventListener('close', () => { d.remove(); if (onClose) onClose(); });
  d.showModal();
  return d;
}

/** "3 min ago" */
export function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
