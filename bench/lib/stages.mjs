// Where a stream's time to first byte goes, stage by stage, in the bare pass-through and in lb-server: every process
// stamps its steps (lib/stage-marks.cjs) with the monotonic clock they all share, and each proxied request is joined
// with the upstream's own record of it. Shows what sets the TTFT tail: the proxy's own work, or the time the machine
// takes to hand the upstream's answer to an idle proxy.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { layout, pacedArgs, pinSelf, STREAM_SHAPE, spawnNode, streaming } from './harness.mjs';
import { startLbServer, UPSTREAM } from './proxy.mjs';
import { percentile, round, sleep } from './stats.mjs';

const MARKS = fileURLToPath(new URL('./stage-marks.cjs', import.meta.url));
const BARE = fileURLToPath(new URL('./bare-proxy.mjs', import.meta.url));

/** The stages of one proxied stream, as [label, from, to] over the joined record's stamps (µs). */
export const STAGES = [
  ['arrival → handed to undici', 'arrive', 'dispatch'],
  ['handed to undici → request written', 'dispatch', 'sent'],
  ['written → proxy idle again', 'sent', 'idle'],
  ['written → upstream has it', 'sent', 'upArrive'],
  ['upstream has it → writes its head', 'upArrive', 'upHead'],
  ['upstream head → proxy socket event', 'upHead', 'socket'],
  ['socket event → head parsed', 'socket', 'upHeaders'],
  ['head parsed → first byte out', 'upHeaders', 'write'],
];

/**
 * Runs `n` streams per target (after `warmup`), targets interleaved in a fresh order every round, one at a time. Each
 * stream is `chunks` chunks `intervalMs` apart (see {@link STREAM_SHAPE}).
 * @param {{ n?: number, warmup?: number, chunks?: number, intervalMs?: number, log?: (s: string) => void }} [opts]
 */
export async function runStages({
  n = 1000,
  warmup = 30,
  chunks = STREAM_SHAPE.chunks,
  intervalMs = STREAM_SHAPE.intervalMs,
  log = () => {},
} = {}) {
  pinSelf();
  const dir = join(tmpdir(), `lb-stages-${process.pid}`);
  const out = (name) => `${dir}-${name}.json`;
  const marked = (name) => ({ nodeArgs: ['--require', MARKS], env: { MARKS_OUT: out(name) } });
  const up = await spawnNode(UPSTREAM, pacedArgs({ chunks, intervalMs }), {
    core: layout.clientCore,
    ...marked('upstream'),
  });
  const upUrl = `http://127.0.0.1:${up.port}`;
  const bare = await spawnNode(BARE, [upUrl], { core: layout.serverCore, ...marked('bare') });
  const lb = await startLbServer([`${upUrl}/v1`, `${upUrl}/v1`, `${upUrl}/v1`], {
    nodeArgs: marked('lb').nodeArgs,
    extraEnv: marked('lb').env,
  });
  const targets = [
    { name: 'direct', url: `${upUrl}/v1` },
    { name: 'undici-bare', key: 'bare', url: `http://127.0.0.1:${bare.port}/v1`, proc: bare },
    { name: 'lb-server', key: 'lb', url: `http://127.0.0.1:${lb.port}/v1`, proc: lb },
  ];
  const procs = [up, bare, lb];
  try {
    log(`${n} streams per target (after ${warmup} and 2 s of load on each proxy)…`);
    const streams = await streaming(targets, {
      n,
      warmup,
      warmS: 2,
      // Each process forgets the warm-up; signals are handled on its event loop, so give them time to land.
      onWarm: async () => {
        for (const p of procs) process.kill(p.pid, 'SIGUSR1');
        await sleep(300);
      },
    });
    for (const p of procs) process.kill(p.pid, 'SIGUSR2');
    // Each process writes its records when its loop gets to the signal: wait for all three files (5 s at most).
    for (
      let waited = 0;
      waited < 5000 && !['upstream', 'bare', 'lb'].every((x) => existsSync(out(x)));
      waited += 50
    )
      await sleep(50);
    const upstream = JSON.parse(readFileSync(out('upstream'), 'utf8')).records.sort(
      (a, b) => a.arrive - b.arrive,
    );
    const [direct] = streams;
    const rows = targets.map((t, j) => {
      const { ttftP50Us, ttftP99Us } = streams[j];
      const row = {
        name: t.name,
        ttftP50Us,
        ttftP99Us,
        addedTtftP50Us: round(ttftP50Us - direct.ttftP50Us),
        addedTtftP99Us: round(ttftP99Us - direct.ttftP99Us),
      };
      if (!t.proc) return row;
      const marks = JSON.parse(readFileSync(out(t.key), 'utf8'));
      const records = join_(marks.records, upstream);
      for (const r of records) r.gc = gcWithin(marks.gcs, r.arrive, r.write);
      row.joined = records.length;
      row.gcs = marks.gcs.length;
      row.inGc = records.filter((r) => r.gc > 0).length;
      row.stages = STAGES.map(([label, from, to]) => {
        const d = records.map((r) => r[to] - r[from]).filter((x) => Number.isFinite(x));
        return { stage: label, p50Us: round(percentile(d, 50)), p99Us: round(percentile(d, 99)) };
      });
      // The slowest 1% from arrival to first byte out: where did their time go (median per stage)?
      const slow = [...records]
        .sort((a, b) => b.write - b.arrive - (a.write - a.arrive))
        .slice(0, Math.max(1, Math.ceil(records.length / 100)));
      row.slowest = STAGES.map(([label, from, to]) => ({
        stage: label,
        medianUs: round(
          percentile(
            slow.map((r) => r[to] - r[from]).filter((x) => Number.isFinite(x)),
            50,
          ),
        ),
      }));
      // How much of the slowest 1% is the proxy's own garbage collection (its pauses within arrival → first byte).
      row.slowestInGc = slow.filter((r) => r.gc > 0).length;
      row.slowestGcMeanUs = round(slow.reduce((a, r) => a + r.gc, 0) / slow.length);
      return row;
    });
    return {
      at: new Date().toISOString(),
      node: process.version,
      n,
      stream: { chunks, intervalMs },
      layout: { ...layout },
      rows,
    };
  } finally {
    for (const p of procs) await p.stop();
    for (const name of ['upstream', 'bare', 'lb']) rmSync(out(name), { force: true });
  }
}

/** µs of the collections `gcs` ([start, end] pairs) that fall within [from, to]. */
export function gcWithin(gcs, from, to) {
  let t = 0;
  for (const [a, b] of gcs) if (b > from && a < to) t += Math.min(b, to) - Math.max(a, from);
  return t;
}

/** Each proxy record with its upstream request (the first one to arrive after the proxy wrote it). */
function join_(records, upstream) {
  const arrivals = upstream.map((u) => u.arrive);
  const joined = [];
  for (const r of records) {
    if (r.sent === undefined || r.upHeaders === undefined || r.write === undefined) continue;
    let lo = 0;
    let hi = arrivals.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (arrivals[m] < r.sent) lo = m + 1;
      else hi = m;
    }
    const u = upstream[lo];
    if (u === undefined || u.arrive > r.upHeaders) continue;
    joined.push({ ...r, upArrive: u.arrive, upHead: u.head ?? u.write });
  }
  return joined;
}
