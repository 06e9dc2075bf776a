// Small statistics and /proc helpers shared by the benchmark and the chaos suite.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Percentile (0..100) of an array of numbers, nearest-rank on a sorted copy. NaN when empty. */
export function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const s = Float64Array.from(values).sort();
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

/**
 * A 95% (or `1 - alpha`) confidence interval for `percentile(a, p) - percentile(b, p)`, by a paired bootstrap: `a[i]`
 * and `b[i]` were measured in the same round (interleaved), so rounds are resampled whole and the noise they share
 * stays paired. Seeded: the same samples give the same interval. Returns [lo, hi], or null with fewer than 20 pairs.
 */
export function pairedPercentileDiffCi(a, b, p, { reps = 2000, alpha = 0.05, seed = 0x2545f491 } = {}) {
  const n = Math.min(a.length, b.length);
  if (n < 20) return null;
  let x = seed >>> 0 || 1;
  const ra = new Float64Array(n);
  const rb = new Float64Array(n);
  const k = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
  const diffs = new Float64Array(reps);
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      const j = x % n;
      ra[i] = a[j];
      rb[i] = b[j];
    }
    ra.sort();
    rb.sort();
    diffs[r] = ra[k] - rb[k];
  }
  diffs.sort();
  const at = (q) => diffs[Math.min(reps - 1, Math.max(0, Math.floor(q * reps)))];
  return [at(alpha / 2), at(1 - alpha / 2)];
}

/** Median of an array of numbers (NaN when empty). */
export function median(values) {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return Number.NaN;
  const s = Float64Array.from(v).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Rounds to `d` decimals, keeping NaN/undefined as null so JSON stays valid. */
export function round(x, d = 1) {
  if (x === undefined || x === null || !Number.isFinite(x)) return null;
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

let clkTck;
function ticksPerSecond() {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/**
 * CPU time (user + system, µs) and resident memory (MB) of a process, from /proc/<pid>/stat and /proc/<pid>/status.
 * Returns undefined where /proc is unavailable (not Linux).
 */
export function procStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(f[11]);
    const stime = Number(f[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return {
      cpuUs: ((utime + stime) * 1e6) / ticksPerSecond(),
      rssMB: rss ? Number(rss[1]) / 1024 : Number.NaN,
    };
  } catch {
    return undefined;
  }
}

/** Prints rows (objects) as an aligned text table. */
export function table(rows, columns = rows.length ? Object.keys(rows[0]) : []) {
  const cells = rows.map((r) =>
    columns.map((c) => (r[c] === null || r[c] === undefined ? '-' : String(r[c]))),
  );
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals) =>
    vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
