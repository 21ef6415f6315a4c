// Reconnecting client for /api/v1/ws.
// Authenticated by the session cookie (same origin). Remembers the last event `seq` and reconnects
// with `?since=` so nothing is missed; backs off 0.5 s → 30 s with jitter; reconnects at once when
// the browser comes back online. A "resync" frame (or a first connect) asks the page to reload its
// state from the REST API.

export class LiveFeed {
  /**
   * handlers: {
   *   onEvent(frame)          order.created / order.updated / stock.low
   *   onSync(reason)          reload state from REST: 'connected' (first time) or 'resync'
   *   onStatus(state)         'connecting' | 'live' | 'offline' | 'signed-out'
   * }
   */
  constructor(handlers) {
    this.h = handlers;
    this.lastSeq = null;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.everConnected = false;
    this.onOnline = () => { if (!this.stopped) this.reconnectNow(); };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = null;
      try { this.ws.close(1000, 'bye'); } catch { /* ignore */ }
      this.ws = null;
    }
  }

  reconnectNow() {
    clearTimeout(this.timer);
    if (this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)) return;
    this.attempt = 0;
    this.connect();
  }

  status(s) {
    if (this.h.onStatus) this.h.onStatus(s);
  }

  connect() {
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const since = this.lastSeq !== null ? `?since=${encodeURIComponent(this.lastSeq)}` : '';
    this.status('connecting');
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/api/v1/ws${since}`);
    } catch {
      this.schedule();
      return;
    }
    this.ws = ws;
    ws.onmessage = (m) => this.message(m.data);
    ws.onclose = (ev) => {
      this.ws = null;
      if (this.stopped) return;
      if (ev.code === 4401) {
        this.status('signed-out');
        this.stopped = true;
        return;
      }
      this.status('offline');
      this.schedule();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  schedule() {
    clearTimeout(this.timer);
    const base = Math.min(30000, 500 * 2 ** Math.min(this.attempt, 6));
    this.attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  message(text) {
    let f;
    try { f = JSON.parse(text); } catch { return; }
    if (f.type === 'welcome') {
      this.attempt = 0;
      this.status('live');
      if (!this.everConnected || this.lastSeq === null) {
        this.everConnected = true;
        this.lastSeq = typeof f.seq === 'number' ? f.seq : this.lastSeq;
        if (this.h.onSync) this.h.onSync('connected');
      }
      return;
    }
    if (f.type === 'resync') {
      if (typeof f.seq === 'number') this.lastSeq = f.seq;
      if (this.h.onSync) this.h.onSync('resync');
      return;
    }
    if (typeof f.seq === 'number') {
      if (this.lastSeq !== null && f.seq <= this.lastSeq) return; // already seen
      this.lastSeq = f.seq;
    }
    if (this.h.onEvent) this.h.onEvent(f);
  }
}
