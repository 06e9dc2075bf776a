// The measurement harness: processes under test are spawned (pinned with taskset when there is more than one core),
// the client side runs here or in wrk/autocannon as a separate process.
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { Client, Pool } from 'undici';
import { percentile, procStat, round, sleep } from './stats.mjs';

export const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello.' }],
});
export const STREAM_BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  stream: true,
  messages: [{ role: 'user', content: 'Say hello.' }],
});
/**
 * The streams the stream benchmarks send by default: 20 chunks 2 ms apart, so every process idles ~2 ms at a time and
 * a new request finds the proxy cold. `--chunks=1 --interval=0` sends streams back to back instead (each process stays
 * warm): the regime `perf-targets.md`'s reference figures read (bare adds 216–270 µs over direct).
 */
export const STREAM_SHAPE = Object.freeze({ chunks: 20, intervalMs: 2 });

/** The fake upstream's arguments for streams of `shape`. */
export const pacedArgs = ({ chunks, intervalMs } = STREAM_SHAPE) => [
  '--chunks',
  String(chunks),
  '--interval',
  String(intervalMs),
];

const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-client' };

function has(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** What pins what: with 2+ cores the server under test gets core 1, upstreams and load generators core 0. */
export const layout = {
  cores: availableParallelism(),
  taskset: has('taskset') && availableParallelism() >= 2,
  wrk: has('wrk'),
  redis: has('redis-server'),
  serverCore: 1,
  clientCore: 0,
};

/** Pins this process (every thread) to the client core. */
export function pinSelf() {
  if (!layout.taskset) return false;
  try {
    execFileSync('taskset', ['-a', '-cp', String(layout.clientCore), String(process.pid)], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Spawns `node <script> ...args` pinned to `core` (when taskset is usable). Resolves once `ready(proc)` resolves:
 * by default when the child prints a JSON line with its port.
 */
export async function spawnNode(
  script,
  args,
  { core, env, nodeArgs = [], readyUrl, timeoutMs = 15_000 } = {},
) {
  const cmd = layout.taskset && core !== undefined ? 'taskset' : process.execPath;
  const argv = [...nodeArgs, script, ...args];
  const full = cmd === 'taskset' ? ['-c', String(core), process.execPath, ...argv] : argv;
  const child = spawn(cmd, full, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
    if (err.length > 20_000) err = err.slice(-10_000);
  });
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const proc = {
    pid: child.pid,
    port: 0,
    child,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
    },
  };
  const deadline = Date.now() + timeoutMs;
  if (readyUrl) {
    child.stdout.resume();
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`${script} exited (${child.exitCode}): ${err.slice(-2000)}`);
      try {
        const r = await fetch(readyUrl);
        await r.arrayBuffer();
        if (r.status < 500) break;
      } catch {}
      if (Date.now() > deadline) {
        await proc.stop();
        throw new Error(`${script} not ready at ${readyUrl}: ${err.slice(-2000)}`);
      }
      await sleep(100);
    }
    return proc;
  }
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${script} did not start: ${err}`)), timeoutMs);
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(t);
        proc.port = JSON.parse(line).port;
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}): ${err}`)));
  });
  return proc;
}

/** Request headers for a target: ours plus whatever the target needs (a peer gateway's routing headers). */
export const headersOf = (t) => (t.headers ? { ...HEADERS, ...t.headers } : HEADERS);

async function once(client, path, body, headers) {
  const t0 = process.hrtime.bigint();
  const r = await client.request({ method: 'POST', path, headers, body });
  await r.body.dump({ limit: 1 << 20 });
  return { us: Number(process.hrtime.bigint() - t0) / 1000, status: r.statusCode };
}

/**
 * The order targets take in each round of an interleaved measurement: a fresh shuffle every round (seeded, so runs
 * repeat). A fixed rotation would always measure the same target right after the same other one: on these VMs the
 * target measured after another proxy runs slower (an A/A run of two identical lb-server builds differed by ~100 µs
 * of TTFT with rotation), so that bias would be credited to one target.
 */
/** `list` starting at its `k`-th item (modulo its length), the items before it moved to the end. */
export const rotated = (list, k) => {
  const i = k % list.length;
  return [...list.slice(i), ...list.slice(0, i)];
};

export function interleaving(count, seed = 0x9e3779b9) {
  let x = seed >>> 0 || 1;
  const order = Array.from({ length: count }, (_, j) => j);
  return () => {
    for (let j = count - 1; j > 0; j--) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      const r = x % (j + 1);
      [order[j], order[r]] = [order[r], order[j]];
    }
    return order;
  };
}

/**
 * Latency at one request in flight, interleaved across targets (so drift and noise hit every target alike).
 * `gapMs` > 0: each request waits that long after the one before (sparse traffic: every request meets the processes
 * idle, their caches cold).
 * @param {{ name: string, url: string }[]} targets  base URLs ending in /v1
 */
export async function oneInFlight(targets, { n = 2000, warmup = 200, body = BODY, gapMs = 0 } = {}) {
  const clients = targets.map((t) => new Client(new URL(t.url).origin, { keepAliveTimeout: 60_000 }));
  const paths = targets.map((t) => `${new URL(t.url).pathname}/chat/completions`);
  const hdrs = targets.map(headersOf);
  const lat = targets.map(() => []);
  const statuses = targets.map(() => ({}));
  const next = interleaving(targets.length);
  for (let i = 0; i < warmup + n; i++) {
    for (const j of next()) {
      if (gapMs > 0 && i >= warmup) await sleep(gapMs);
      const r = await once(clients[j], paths[j], body, hdrs[j]);
      if (i >= warmup) {
        lat[j].push(r.us);
        statuses[j][r.status] = (statuses[j][r.status] ?? 0) + 1;
      }
    }
  }
  await Promise.all(clients.map((c) => c.close()));
  // Each target's latency of every measured round, in round order (not enumerable: out of tables and JSON).
  return targets.map((t, j) =>
    Object.defineProperty(
      {
        name: t.name,
        p50Us: round(percentile(lat[j], 50)),
        p99Us: round(percentile(lat[j], 99)),
        statuses: statuses[j],
      },
      'samples',
      { value: lat[j] },
    ),
  );
}

/**
 * Open loop: calls `fire(i, scheduled)` for `rate × durationMs / 1000` requests, request `i` when it is due
 * (`scheduled`, a `performance.now()` time: `i / rate` after the start), whatever the latency of those before.
 * Checks the schedule every `tickMs`. Resolves with the count once every fired promise has settled.
 * @param {{ rate: number, durationMs: number, tickMs?: number }} o
 * @param {(i: number, scheduled: number) => Promise<unknown>} fire
 */
export async function atRate({ rate, durationMs, tickMs = 1 }, fire) {
  const start = performance.now();
  const total = Math.round((rate * durationMs) / 1000);
  const pending = [];
  for (let sent = 0; sent < total; ) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    for (; sent < due; sent++) pending.push(fire(sent, start + (sent * 1000) / rate));
    await sleep(tickMs);
  }
  await Promise.all(pending);
  return total;
}

/**
 * Open loop at a fixed rate: requests are sent on schedule whatever the latency, and latency counts from the
 * scheduled time (no coordinated omission).
 */
export async function openLoop(target, { rate, durationMs, body = BODY }) {
  const u = new URL(target.url);
  const headers = headersOf(target);
  const pool = new Pool(u.origin, { connections: 128, keepAliveTimeout: 60_000 });
  const path = `${u.pathname}/chat/completions`;
  const lat = [];
  let errors = 0;
  const sent = await atRate({ rate, durationMs }, (_i, scheduled) =>
    pool
      .request({ method: 'POST', path, headers, body })
      .then(async (r) => {
        await r.body.dump({ limit: 1 << 20 });
        if (r.statusCode !== 200) errors++;
        lat.push((performance.now() - scheduled) * 1000);
      })
      .catch(() => errors++),
  );
  await pool.close();
  return {
    rate,
    sent,
    errors,
    p50Us: round(percentile(lat, 50)),
    p99Us: round(percentile(lat, 99)),
  };
}

const WRK_SCRIPT = '/tmp/lb-bench-post.lua';

/**
 * Closed loop at fixed concurrency with wrk (or autocannon when wrk is missing), in a separate process pinned to the
 * client core. Reads the server's CPU time from /proc before and after: CPU µs per completed request.
 */
export async function maxRps(t, { connections = 32, durationS = 10, pid, body = BODY }) {
  const target = `${t.url}/chat/completions`;
  const headers = headersOf(t);
  const before = pid ? procStat(pid) : undefined;
  let res;
  if (layout.wrk) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      WRK_SCRIPT,
      `wrk.method = "POST"\nwrk.body = '${body}'\n${Object.entries(headers)
        .map(([k, v]) => `wrk.headers["${k}"] = "${v}"\n`)
        .join('')}`,
    );
    const args = ['-t1', `-c${connections}`, `-d${durationS}s`, '--latency', '-s', WRK_SCRIPT, target];
    const out = await run(
      layout.taskset ? 'taskset' : 'wrk',
      layout.taskset ? ['-c', String(layout.clientCore), 'wrk', ...args] : args,
    );
    const num = (re) => {
      const m = re.exec(out);
      return m ? Number(m[1]) : Number.NaN;
    };
    const unit = (re) => {
      const m = re.exec(out);
      if (!m) return Number.NaN;
      const v = Number(m[1]);
      return m[2] === 'us' ? v : m[2] === 'ms' ? v * 1000 : v * 1e6;
    };
    res = {
      tool: 'wrk',
      requests: num(/(\d+) requests in/),
      rps: num(/Requests\/sec:\s+([\d.]+)/),
      non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) || 0,
      errors: num(/Socket errors:.*?timeout (\d+)/) || 0,
      p50Us: unit(/50%\s+([\d.]+)(us|ms|s)/),
      p99Us: unit(/99%\s+([\d.]+)(us|ms|s)/),
    };
  } else {
    const ac = createRequire(import.meta.url).resolve('autocannon/autocannon.js');
    const args = [ac, '-j', '-c', String(connections), '-d', String(durationS), '-m', 'POST'];
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
    args.push('-b', body, target);
    const out = await run(
      layout.taskset ? 'taskset' : process.execPath,
      layout.taskset ? ['-c', String(layout.clientCore), process.execPath, ...args] : args,
    );
    const j = JSON.parse(out.slice(out.indexOf('{')));
    res = {
      tool: 'autocannon',
      requests: j.requests.total,
      rps: j.requests.average,
      non2xx: j.non2xx,
      errors: j.errors,
      p50Us: j.latency.p50 * 1000,
      p99Us: j.latency.p99 * 1000,
    };
  }
  const after = pid ? procStat(pid) : undefined;
  return {
    ...res,
    rps: round(res.rps, 0),
    cpuUsPerReq:
      before && after && res.requests > 0 ? round((after.cpuUs - before.cpuUs) / res.requests) : null,
    rssMB: after ? round(after.rssMB) : null,
  };
}

/**
 * Max RPS in rounds, laid out against this VM's ordering bias (the server process started second, and the target
 * measured right after another, run ~10% slower): targets with `start` get fresh processes every round, started in
 * an order that alternates, warmed for 1 s; then every target is measured, in an order rotating each round.
 * `targets`: `{ name, url, pid }` kept for the whole run, or `{ name, start: () => Promise<{ url, pid, proc }> }`.
 * Returns per target its `runs` (maxRps results), `idleMB` (fresh ones, 500 ms after the first start) and `steadyMB`
 * (after its last run); fresh processes are stopped after each round.
 */
export async function maxRpsRounds(targets, { rounds, durationS, connections = 32, log = () => {} }) {
  const out = targets.map((t) => ({ name: t.name, runs: [], idleMB: null, steadyMB: null }));
  const fresh = targets.map((_, j) => j).filter((j) => targets[j].start);
  for (let r = 0; r < rounds; r++) {
    const live = targets.slice();
    for (const j of r % 2 === 0 ? fresh : [...fresh].reverse())
      live[j] = { name: targets[j].name, ...(await targets[j].start()) };
    if (r === 0) {
      await sleep(500);
      for (const j of fresh) out[j].idleMB = round(procStat(live[j].pid)?.rssMB);
    }
    for (const j of fresh) await maxRps(live[j], { connections, durationS: 1, pid: live[j].pid });
    for (let k = 0; k < live.length; k++) {
      const j = (k + r) % live.length;
      log(`max RPS at c=${connections}: ${live[j].name} (round ${r + 1}/${rounds})…`);
      out[j].runs.push(await maxRps(live[j], { connections, durationS, pid: live[j].pid }));
      out[j].steadyMB = round(procStat(live[j].pid)?.rssMB);
    }
    for (const j of fresh) await live[j].proc.stop();
  }
  return out;
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => {
      out += d;
    });
    c.stderr.on('data', (d) => {
      out += d;
    });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${out}`))));
  });
}

/**
 * Streams at one in flight, interleaved: time to first SSE byte and the gaps between chunks, per target.
 * The upstream must pace its chunks (`--interval`), so each arrives as its own read.
 *
 * `warmS`: seconds of closed-loop load on each target first (half plain requests, half streams, c=32). A few
 * hundred streams at one in flight are too few for V8 to optimise a proxy's request path: without it, the figures
 * are those of a process that just started, running its per-request code in the interpreter (lb-server's router
 * `execute` was optimised only after ~600 measured streams).
 *
 * The targets are warmed one after another, so the last one warmed meets the measurement fresh from its load and
 * the first one after an idle spell as long as the others' warming. Where a target sits in that order moves its TTFT
 * p50 by up to ~200 µs: in nine sets of processes where a copy of bare was warmed before its twin, it read 6–214 µs
 * slower (median 128); in the one set with the order reversed, 157 µs faster. `warmRotate` rotates the order (long
 * runs rotate it every round, so every target meets each place in it).
 *
 * `onWarm`: awaited once between the warm-up streams and the measured ones.
 */
export async function streaming(targets, { n = 200, warmup = 20, warmS = 0, warmRotate = 0, onWarm } = {}) {
  if (warmS > 0) {
    for (const t of rotated(targets, warmRotate)) {
      await maxRps(t, { durationS: Math.max(1, Math.round(warmS / 2)) });
      await maxRps(t, { durationS: Math.max(1, Math.round(warmS / 2)), body: STREAM_BODY });
    }
  }
  const clients = targets.map((t) => new Client(new URL(t.url).origin));
  const paths = targets.map((t) => `${new URL(t.url).pathname}/chat/completions`);
  const hdrs = targets.map(headersOf);
  const ttft = targets.map(() => []);
  const gaps = targets.map(() => []);
  const next = interleaving(targets.length);
  for (let i = 0; i < warmup + n; i++) {
    if (i === warmup && onWarm) await onWarm();
    for (const j of next()) {
      const t0 = performance.now();
      const r = await clients[j].request({
        method: 'POST',
        path: paths[j],
        headers: hdrs[j],
        body: STREAM_BODY,
      });
      let last = 0;
      for await (const _ of r.body) {
        const now = performance.now();
        if (i >= warmup) {
          if (last === 0) ttft[j].push((now - t0) * 1000);
          else gaps[j].push((now - last) * 1000);
        }
        last = now;
      }
    }
  }
  await Promise.all(clients.map((c) => c.close()));
  return targets.map((t, j) => {
    const row = {
      name: t.name,
      ttftP50Us: round(percentile(ttft[j], 50)),
      ttftP99Us: round(percentile(ttft[j], 99)),
      gapP50Us: round(percentile(gaps[j], 50)),
      gapP99Us: round(percentile(gaps[j], 99)),
    };
    // Each target's TTFT of every measured round, in round order (for paired comparisons); not enumerable, so it
    // stays out of tables and JSON.
    Object.defineProperty(row, 'ttftSamples', { value: ttft[j] });
    return row;
  });
}

/**
 * POSTs a chat completion (`BODY`) through `pool` as client `clientKey`; resolves with the status (0: no answer),
 * the body read and dropped.
 * @param {import('undici').Pool} pool
 * @param {string} clientKey
 * @returns {Promise<number>}
 */
export function chatStatus(pool, clientKey) {
  return pool
    .request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` },
      body: BODY,
    })
    .then(
      async (r) => {
        await r.body.dump();
        return r.statusCode;
      },
      () => 0,
    );
}
