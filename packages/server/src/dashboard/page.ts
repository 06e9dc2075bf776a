import { createHash } from 'node:crypto';

// The dashboard page: one HTML document with its style and script inline (no CDN, no web font, no second request).
// The script is plain ES2017 written as a string (the browser runs it; the browser test covers it). It never uses
// innerHTML with data: every value goes in through textContent.

const STYLE = `
:root{color-scheme:light dark;--bg:#fbfbfc;--fg:#1b1d22;--mut:#5b6270;--line:#d9dce3;--card:#fff;--ok:#137a3b;--warn:#8a5a00;--bad:#b3261e;--off:#5b6270;--acc:#1d4ed8}
@media (prefers-color-scheme:dark){:root{--bg:#111317;--fg:#e6e8ec;--mut:#a3aab8;--line:#2c313a;--card:#181b21;--ok:#4ade80;--warn:#fbbf24;--bad:#f87171;--off:#9ca3af;--acc:#93b4ff}}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.75rem 1rem;border-bottom:1px solid var(--line)}
h1{font-size:1.1rem;margin:0}
h2{font-size:1rem;margin:0 0 .5rem}
main{padding:1rem;display:grid;gap:1rem;grid-template-columns:minmax(0,1fr)}
@media (min-width:1500px){main{grid-template-columns:minmax(0,3fr) minmax(0,1fr)}#strip{max-height:40rem}#endpoints-card,#requests-card{grid-column:1}#strip-card{grid-column:2;grid-row:1/span 2}}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.75rem;min-width:0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
caption{text-align:left;color:var(--mut);font-size:.85rem;padding-bottom:.25rem}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);white-space:nowrap;vertical-align:top}
th{font-weight:600;color:var(--mut);font-size:.8rem}
td.num,th.num{text-align:right}
.badge{display:inline-block;padding:0 .4rem;border-radius:4px;border:1px solid currentColor;font-size:.8rem;font-weight:600}
.s-healthy{color:var(--ok)}.s-cooling,.s-half-open,.s-probation,.s-limited,.s-degraded{color:var(--warn)}.s-open,.s-unhealthy{color:var(--bad)}.s-disabled{color:var(--off)}
.mut{color:var(--mut)}
button{font:inherit;padding:.25rem .6rem;border-radius:6px;border:1px solid var(--line);background:var(--bg);color:var(--fg);cursor:pointer}
button:focus-visible,input:focus-visible{outline:2px solid var(--acc);outline-offset:2px}
button.primary{background:var(--acc);color:var(--bg);border-color:var(--acc)}
ol{list-style:none;margin:0;padding:0;max-height:11rem;overflow:auto}
li{padding:.25rem 0;border-bottom:1px solid var(--line);font-size:.85rem}
.k{font-weight:600}
td .mut{white-space:normal;max-width:16rem;font-size:.8rem}
form.login{padding:.75rem 1rem;border-bottom:1px solid var(--line)}
form.login p{margin:0;flex-basis:100%}
.k-failover,.k-exhausted{color:var(--bad)}.k-breaker,.k-state{color:var(--warn)}.k-reload,.k-override{color:var(--acc)}
#result{min-height:1.4em}
.grid3{display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr))}
dialog{border:1px solid var(--line);border-radius:8px;background:var(--card);color:var(--fg);max-width:26rem}
dialog::backdrop{background:rgb(0 0 0/.4)}
form.login{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}
input{font:inherit;padding:.3rem .5rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
`;

const SCRIPT = `
(function () {
  'use strict';
  var STORE = 'lb-dashboard-key';
  var base = location.pathname.replace(/\\/+$/, '');
  var root = base.replace(/\\/dashboard$/, '');
  var key = '';
  try { key = sessionStorage.getItem(STORE) || ''; } catch (e) {}
  function fromHash() {
    var m = /(?:^#|&)key=([^&]*)/.exec(location.hash);
    if (!m) return false;
    key = decodeURIComponent(m[1]);
    try { sessionStorage.setItem(STORE, key); } catch (e) {}
    history.replaceState(null, '', location.pathname + location.search);
    return true;
  }
  fromHash();
  addEventListener('hashchange', function () { if (fromHash()) connect(); });
  var $ = function (id) { return document.getElementById(id); };
  var rows = {};
  var retry = 0;
  var conn;

  function headers() { return key ? { 'x-admin-key': key } : {}; }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function ms(v) { return v === undefined || v === null ? '–' : v < 10 ? v.toFixed(1) : String(Math.round(v)); }
  function pair(a, b) { return ms(a) + ' / ' + ms(b); }
  function kv(o) {
    var out = [];
    for (var k in o || {}) out.push(k + ' ' + o[k]);
    return out.length ? out.join(', ') : '–';
  }
  function time(t) { return new Date(t).toLocaleTimeString(); }
  var SYM = { healthy: '●', cooling: '◔', 'half-open': '◑', probation: '◑', limited: '◔', open: '✕', unhealthy: '✕', disabled: '○' };

  function setConn(text, cls) { var c = $('conn'); c.textContent = text; c.className = 'badge ' + (cls || ''); }

  function showLogin(msg) {
    $('login').hidden = false;
    $('login-msg').textContent = msg || '';
    $('key').focus();
  }

  function connect() {
    if (conn) conn.abort();
    var ctl = new AbortController();
    conn = ctl;
    setConn('connecting', 's-cooling');
    fetch(base + '/events', { headers: headers(), cache: 'no-store', signal: ctl.signal }).then(function (res) {
      if (res.status === 401 || res.status === 403) {
        setConn('locked', 's-disabled');
        return res.json().then(function (b) { showLogin((b && b.error && b.error.message) || 'Access denied'); }, function () { showLogin('Access denied'); });
      }
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      $('login').hidden = true;
      setConn('live', 's-healthy');
      retry = 0;
      var reader = res.body.getReader();
      var dec = new TextDecoder();
      var buf = '';
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) throw new Error('stream ended');
          buf += dec.decode(r.value, { stream: true });
          var i;
          while ((i = buf.indexOf('\\n\\n')) >= 0) {
            var block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            var lines = block.split('\\n');
            for (var j = 0; j < lines.length; j++) if (lines[j].indexOf('data: ') === 0) apply(JSON.parse(lines[j].slice(6)));
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      if (ctl.signal.aborted) return;
      setConn('reconnecting', 's-cooling');
      retry = Math.min(retry + 1, 10);
      setTimeout(connect, retry * 1000);
    });
  }

  function apply(f) {
    var st = $('status');
    st.textContent = f.status;
    st.className = 'badge s-' + f.status;
    $('updated').textContent = 'updated ' + time(f.time);
    endpoints(f.endpoints);
    strip(f.events, f.full);
    requests(f.requests, f.full);
    tokens(f.tokens);
    store(f.store);
  }

  function endpoints(list) {
    var body = $('ep-body');
    var seen = {};
    list.forEach(function (e, idx) {
      seen[e.id] = true;
      var r = rows[e.id];
      if (!r) {
        var tr = el('tr');
        tr.dataset.endpoint = e.id;
        var cells = [];
        var th = el('th');
        th.scope = 'row';
        tr.appendChild(th);
        for (var c = 0; c < 10; c++) { var td = el('td'); if (c >= 1 && c <= 5) td.className = 'num'; tr.appendChild(td); cells.push(td); }
        var act = el('td');
        var btn = el('button');
        btn.type = 'button';
        btn.addEventListener('click', function () { toggle(tr.dataset.endpoint, tr.dataset.state === 'disabled'); });
        act.appendChild(btn);
        tr.appendChild(act);
        r = rows[e.id] = { tr: tr, th: th, cells: cells, btn: btn };
      }
      if (body.children[idx] !== r.tr) body.insertBefore(r.tr, body.children[idx] || null);
      r.tr.dataset.state = e.display;
      r.th.textContent = e.name === e.id ? e.id : e.name + ' (' + e.id + ')';
      var stc = r.cells[0];
      stc.textContent = '';
      var b = el('span', (SYM[e.display] || '•') + ' ' + e.display, 'badge s-' + e.display);
      stc.appendChild(b);
      var why = e.display === 'cooling' && e.recoversAt ? 'until ' + time(e.recoversAt) : e.reason || '';
      if (why) stc.appendChild(el('div', why, 'mut'));
      r.cells[1].textContent = e.inFlight;
      r.cells[2].textContent = e.rps.toFixed(1);
      r.cells[3].textContent = (e.errorRate * 100).toFixed(1) + '%';
      r.cells[3].title = kv(e.errors);
      r.cells[4].textContent = pair(e.p50, e.p99);
      r.cells[5].textContent = pair(e.ttfbP50, e.ttfbP99);
      r.cells[6].textContent = kv(e.errors);
      r.cells[7].textContent = kv(e.budget);
      r.cells[8].textContent = e.tags.length ? e.tags.join(', ') : '–';
      r.cells[9].textContent = e.models.length ? e.models.join(', ') : 'any';
      var dis = e.display === 'disabled';
      r.btn.textContent = dis ? 'Enable' : 'Disable';
      r.btn.setAttribute('aria-label', (dis ? 'Enable ' : 'Disable ') + e.id);
    });
    for (var id in rows) if (!seen[id]) { rows[id].tr.remove(); delete rows[id]; }
  }

  function strip(events, full) {
    var ol = $('strip');
    if (full) ol.textContent = '';
    events.forEach(function (ev) {
      var li = el('li');
      li.dataset.kind = ev.kind;
      li.appendChild(el('span', time(ev.t) + ' ', 'mut'));
      li.appendChild(el('span', ev.kind, 'k k-' + ev.kind));
      li.appendChild(el('span', ' ' + ev.text));
      ol.insertBefore(li, ol.firstChild);
    });
    while (ol.children.length > 100) ol.lastChild.remove();
  }

  function requests(list, full) {
    var body = $('rq-body');
    if (full) body.textContent = '';
    list.forEach(function (q) {
      var tr = el('tr');
      var cells = [time(q.t), q.id, q.model || '–', q.endpoint || '–', q.status, q.attempts, ms(q.latencyMs), ms(q.ttfbMs), q.tokens === undefined ? '–' : q.tokens, q.client || '–'];
      cells.forEach(function (v, i) { var td = el('td', v); if (i >= 4 && i <= 8) td.className = 'num'; if (i === 4) td.className += q.status >= 400 ? ' s-unhealthy' : ''; tr.appendChild(td); });
      body.insertBefore(tr, body.firstChild);
    });
    while (body.children.length > 50) body.lastChild.remove();
  }

  function fill(id, o) {
    var body = $(id);
    body.textContent = '';
    var ks = Object.keys(o || {}).sort(function (a, b) { return o[b] - o[a]; });
    if (!ks.length) { var tr0 = el('tr'); var td0 = el('td', 'none yet', 'mut'); td0.colSpan = 2; tr0.appendChild(td0); body.appendChild(tr0); }
    ks.slice(0, 20).forEach(function (k) { var tr = el('tr'); var th = el('th', k); th.scope = 'row'; tr.appendChild(th); tr.appendChild(el('td', o[k], 'num')); body.appendChild(tr); });
  }
  function tokens(t) { fill('tk-key', t.byKey); fill('tk-model', t.byModel); fill('tk-endpoint', t.byEndpoint); }

  function store(s) {
    var card = $('store-card');
    if (!s) { card.hidden = true; return; }
    card.hidden = false;
    var ok = s.status === 'up';
    var b = $('store-state');
    b.textContent = (ok ? '● ' : '✕ ') + s.status;
    b.className = 'badge ' + (ok ? 's-healthy' : 's-unhealthy');
    var share = s.status === 'degraded' && s.share ? '; this replica keeps to ' + Math.round(s.share * 100) + '% of every budget' : '';
    $('store-detail').textContent =
      s.kind + ' (' + (s.connection || '?') + '), ' + (s.replicas || 1) + ' replica(s), ' + s.errors + ' store error(s) so far' + share;
  }

  var pending;
  function confirmThen(text, run) {
    var d = $('confirm');
    $('confirm-text').textContent = text;
    pending = run;
    d.returnValue = '';
    d.showModal();
    $('confirm-ok').focus();
  }
  function result(text, bad) {
    var r = $('result');
    r.textContent = text;
    r.className = bad ? 's-unhealthy' : 's-healthy';
  }
  function post(path, label) {
    var h = headers();
    h['content-type'] = 'application/json';
    return fetch(root + path, { method: 'POST', headers: h, body: '{}' }).then(function (res) {
      return res.json().then(function (b) {
        if (!res.ok) return result(label + ' failed: ' + ((b && b.error && b.error.message) || 'HTTP ' + res.status), true);
        return b;
      });
    }).catch(function (e) { result(label + ' failed: ' + e.message, true); });
  }
  function toggle(id, enable) {
    var verb = enable ? 'Enable' : 'Disable';
    confirmThen(verb + ' endpoint ' + id + '?', function () {
      return post('/admin/endpoints/' + encodeURIComponent(id) + '/' + verb.toLowerCase(), verb + ' ' + id).then(function (b) {
        if (b) result(verb + 'd ' + b.id + ': now ' + b.status);
      });
    });
  }

  $('reload').addEventListener('click', function () {
    confirmThen('Reload the config from its source?', function () {
      return post('/admin/reload', 'Reload').then(function (b) {
        if (b) result('Reloaded: ' + b.added.length + ' added, ' + b.removed.length + ' removed, ' + b.changed.length + ' changed' +
          (b.added.length ? ' (+' + b.added.join(', ') + ')' : '') + (b.removed.length ? ' (−' + b.removed.join(', ') + ')' : ''));
      });
    });
  });
  $('confirm').addEventListener('close', function () {
    var run = pending;
    pending = undefined;
    if ($('confirm').returnValue === 'ok' && run) run();
  });
  $('login').addEventListener('submit', function (ev) {
    ev.preventDefault();
    key = $('key').value;
    $('key').value = '';
    try { sessionStorage.setItem(STORE, key); } catch (e) {}
    connect();
  });
  connect();
})();
`;

const BODY = `<header>
<h1>lb-server</h1>
<span>status <span id="status" class="badge">…</span></span>
<span>stream <span id="conn" class="badge" role="status">connecting</span></span>
<span id="updated" class="mut"></span>
<button type="button" id="reload">Reload config</button>
<span id="result" role="status" aria-live="polite"></span>
</header>
<form id="login" class="login" hidden>
<p id="login-msg" role="alert"></p>
<label>Admin key <input id="key" type="password" autocomplete="current-password" required></label>
<button class="primary">Connect</button>
<span class="mut">Kept in this tab only (sessionStorage); sent as the x-admin-key header.</span>
</form>
<main>
<section id="endpoints-card" aria-labelledby="ep-h"><h2 id="ep-h">Endpoints</h2><div class="scroll"><table>
<caption>Rates and errors over the last 5 s; latency and time to first byte p50 / p99 in ms, while this page is open</caption>
<thead><tr><th scope="col">Endpoint</th><th scope="col">State</th><th scope="col" class="num">In flight</th><th scope="col" class="num">Req/s</th><th scope="col" class="num">Errors</th><th scope="col" class="num">Latency p50 / p99</th><th scope="col" class="num">TTFB p50 / p99</th><th scope="col">Errors by kind</th><th scope="col">Budget left</th><th scope="col">Tags</th><th scope="col">Models</th><th scope="col">Action</th></tr></thead>
<tbody id="ep-body"></tbody></table></div></section>
<section id="strip-card" aria-labelledby="st-h"><h2 id="st-h">Live events</h2><ol id="strip" aria-live="polite" aria-relevant="additions"></ol></section>
<section id="requests-card" aria-labelledby="rq-h"><h2 id="rq-h">Last requests</h2><div class="scroll"><table>
<caption>Newest first; never a key: the client column is a masked key or an address</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Id</th><th scope="col">Model</th><th scope="col">Endpoint</th><th scope="col" class="num">Status</th><th scope="col" class="num">Attempts</th><th scope="col" class="num">Latency ms</th><th scope="col" class="num">TTFB ms</th><th scope="col" class="num">Tokens</th><th scope="col">Client</th></tr></thead>
<tbody id="rq-body"></tbody></table></div></section>
<section aria-labelledby="tk-h"><h2 id="tk-h">Tokens</h2><div class="grid3">
<table><caption>By key (since a dashboard was first opened)</caption><thead><tr><th scope="col">Key</th><th scope="col" class="num">Tokens</th></tr></thead><tbody id="tk-key"></tbody></table>
<table><caption>By model (since start)</caption><thead><tr><th scope="col">Model</th><th scope="col" class="num">Tokens</th></tr></thead><tbody id="tk-model"></tbody></table>
<table><caption>By endpoint (since start)</caption><thead><tr><th scope="col">Endpoint</th><th scope="col" class="num">Tokens</th></tr></thead><tbody id="tk-endpoint"></tbody></table>
</div></section>
<section id="store-card" aria-labelledby="sh-h" hidden><h2 id="sh-h">Shared store</h2><p><span id="store-state" class="badge"></span> <span id="store-detail" class="mut"></span></p></section>
</main>
<dialog id="confirm" aria-labelledby="confirm-text"><form method="dialog"><p id="confirm-text"></p>
<button value="cancel">Cancel</button> <button value="ok" id="confirm-ok" class="primary">Confirm</button></form></dialog>`;

/** The page, built once. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,"><title>lb-server dashboard</title>
<style>${STYLE}</style></head><body>
${BODY}
<script>${SCRIPT}</script>
</body></html>`;

const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/** Content-Security-Policy of the page: only its own inline style and script, fetches to itself, no framing. */
export const DASHBOARD_CSP = `default-src 'none'; style-src ${hash(STYLE)}; script-src ${hash(SCRIPT)}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
