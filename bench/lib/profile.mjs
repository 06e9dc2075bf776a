// Summarises a V8 .cpuprofile (from node --cpu-prof): the functions with the most self time.
import { readFileSync } from 'node:fs';

/** Top `n` functions by self time, as { fn, where, selfPct }. */
export function topSelf(file, n = 15) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const hits = new Map();
  for (const s of p.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  const agg = new Map();
  let total = 0;
  for (const [id, count] of hits) {
    const node = byId.get(id);
    if (!node) continue;
    const cf = node.callFrame;
    const where = cf.url
      ? `${cf.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, '~/')}:${cf.lineNumber + 1}`
      : '';
    const key = `${cf.functionName || '(anonymous)'}|${where}`;
    agg.set(key, (agg.get(key) ?? 0) + count);
    total += count;
  }
  return [...agg.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, c]) => {
      const [fn, where] = k.split('|');
      return {
        fn,
        where: where.replace(/.*\/work\/main\//, ''),
        selfPct: Math.round((c / total) * 1000) / 10,
      };
    });
}
