// Soak: lb-server under closed-loop load for a fixed number of requests (200k by default), with its RSS read after
// every slice of load, to tell a flat memory profile from a leak. The traffic mixes the paths that hold per-request
// state: plain answers, streams, and failovers (one of the three endpoints answers 500, with the breaker off, so
// every third attempt fails over).
import { layout, maxRps, STREAM_BODY, spawnNode } from './harness.mjs';
import { startLbServer, UPSTREAM } from './proxy.mjs';
import { median, procStat, round, sleep } from './stats.mjs';

/** Least-squares slope of y over x. */
function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * Runs the soak. `requests`: how many to send in all (at least `minSlices` slices); `sliceS`: seconds per slice of load (slices alternate plain and
 * streaming requests). Returns the RSS after every slice, the growth over the second half of the run (MB per 100k
 * requests, least squares), the RSS after the load stopped and a short idle, and every non-2xx answer the client saw.
 */
export async function runSoak(opts = {}) {
  const requests = opts.requests ?? 200_000;
  const sliceS = opts.sliceS ?? 1;
  const minSlices = opts.minSlices ?? 4;
  const settleMs = opts.settleMs ?? 5_000;
  const log = opts.log ?? (() => {});
  const procs = [];
  try {
    const up = await spawnNode(UPSTREAM, [], { core: layout.clientCore });
    procs.push(up);
    const bad = await spawnNode(UPSTREAM, ['--status', '500'], { core: layout.clientCore });
    procs.push(bad);
    const url = (p) => `http://127.0.0.1:${p.port}/v1`;
    const lb = await startLbServer([url(up), url(up), url(bad)], {
      extraEnv: { OPENAI_CIRCUIT_BREAKER: 'false' },
    });
    procs.push(lb);
    const target = { url: `http://127.0.0.1:${lb.port}/v1` };
    const startMB = round(procStat(lb.pid)?.rssMB);
    const slices = [];
    let sent = 0;
    let non2xx = 0;
    let errors = 0;
    let cpuUs = 0;
    for (let i = 0; sent < requests || i < minSlices; i++) {
      const stream = i % 2 === 1;
      const r = await maxRps(target, {
        durationS: sliceS,
        pid: lb.pid,
        ...(stream ? { body: STREAM_BODY } : {}),
      });
      sent += r.requests;
      non2xx += r.non2xx;
      errors += r.errors;
      cpuUs += (r.cpuUsPerReq ?? 0) * r.requests;
      slices.push({ requests: sent, stream, rps: r.rps, rssMB: round(procStat(lb.pid)?.rssMB) });
      log(`soak: ${sent} requests, RSS ${slices.at(-1).rssMB} MB`);
    }
    await sleep(settleMs);
    const afterMB = round(procStat(lb.pid)?.rssMB);
    const half = slices.slice(Math.floor(slices.length / 2));
    const perReq = slope(
      half.map((s) => s.requests),
      half.map((s) => s.rssMB),
    );
    const rss = slices.map((s) => s.rssMB);
    return {
      at: new Date().toISOString(),
      node: process.version,
      requests: sent,
      sliceS,
      startMB,
      firstSliceMB: rss[0],
      maxMB: Math.max(...rss),
      lastMB: rss.at(-1),
      medianSecondHalfMB: round(median(half.map((s) => s.rssMB))),
      growthSecondHalfMBPer100k: round(perReq * 100_000, 2),
      afterIdleMB: afterMB,
      cpuUsPerReq: round(cpuUs / Math.max(1, sent)),
      non2xx,
      errors,
      slices,
    };
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
}
