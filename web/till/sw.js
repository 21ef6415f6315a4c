// The till's service worker: lets the till open again after a reload while the network is down.
// Network first (so a deploy is picked up at once), the last good copy when offline. API calls are
// never touched: sales made offline go through the till's own outbox (queue.js).

const CACHE = 'till-shell-v3';
const SHELL = [
  '/till/', '/till/till.js', '/till/queue.js', '/till/shift.js', '/till/location.js', '/till/shift.css',
  '/assets/app.css', '/assets/api.js', '/assets/ui.js', '/assets/pricing.js',
];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/health') || url.pathname === '/metrics') return;
  e.respondWith(fetch(e.request)
    .then((resp) => {
      if (resp.ok) {
        const copy = resp.clone();
        caches.open(CACHE).then((c) => c.put(e.request, copy));
      }
      return resp;
    })
    .catch(() => caches.match(e.request, { ignoreSearch: true }).then((r) => r || Response.error())));
});
