// An lb plugin: one strategy, `model-affinity`. Each model sticks to one endpoint (so an upstream's prompt cache stays
// warm for it); requests without a model go round-robin. Failover still works: the router hands a retry only the
// endpoints not yet tried, and the strategy picks among those.
//
// lb-server loads it with `plugins = ["./strategy.mjs"]` (or the package name once installed) and selects it with
// `strategy = "model-affinity"`. The plugin imports nothing from lb: lb-server checks the shape and registers it.

/** FNV-1a: a small, stable string hash (the same model → the same endpoint, on every replica). */
function hash(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The strategy factory: lb calls it once per route (model group), with `{ random }`. */
export function modelAffinity() {
  let cursor = 0;
  return {
    name: 'model-affinity',
    pick(candidates, ctx) {
      if (candidates.length === 0) return undefined;
      if (ctx.model === undefined) return candidates[cursor++ % candidates.length];
      return candidates[hash(ctx.model) % candidates.length];
    },
  };
}

export default {
  strategies: { 'model-affinity': modelAffinity },
};
