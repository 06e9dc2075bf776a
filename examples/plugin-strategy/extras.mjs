// A plugin may also bring guards and dialects. This one has one of each:
//  - the guard `drain-tag` keeps new requests off endpoints tagged "drain" (set the tag, reload, watch them empty);
//  - the dialect `openai-org` speaks OpenAI's API and sends the endpoint's `meta.organization` as the
//    `openai-organization` header (select it with `provider = "openai-org"`).
// Load it next to the strategy: plugins = ["./strategy.mjs", "./extras.mjs"].

/** A guard factory: lb-server calls it once per router and attaches the guard it returns. */
export function drainTag() {
  return {
    name: 'drain-tag',
    usesNow: false,
    admit: (endpoint) => (endpoint.tags.includes('drain') ? { reason: 'tagged "drain"' } : true),
  };
}

export const openaiOrg = {
  name: 'openai-org',
  supports: () => true,
  prepare(req) {
    const headers = { ...req.headers, authorization: `Bearer ${req.endpoint.apiKey ?? ''}` };
    delete headers['content-length'];
    delete headers.host;
    const org = req.endpoint.meta.organization;
    if (typeof org === 'string') headers['openai-organization'] = org;
    let body = req.body;
    if (req.json && req.upstreamModel !== undefined && req.json.model !== req.upstreamModel)
      body = new TextEncoder().encode(JSON.stringify({ ...req.json, model: req.upstreamModel }));
    return { url: `${req.endpoint.url.replace(/\/$/, '')}${req.path}`, method: req.method, headers, body };
  },
};

export default { guards: [drainTag], dialects: [openaiOrg] };
