import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientLimiter } from '@lb/ratelimit';
import type { KeyConfig, VirtualKey } from '@lb/spend';
import { sendJson, sendStatus } from './http.js';
import type { ClientIdentity, Wallet } from './spend.js';

/** What a key's limiter needs of `@lb/ratelimit`'s `ClientLimiter`. */
type Limiter = Pick<ClientLimiter, 'take'>;

/** A named key's own limiter: its `rps` and `rpm` (and the server's client limit, when set), one `take` for all. */
export interface KeyLimiter extends Limiter {
  readonly windowMs: number;
}

/** Per-key limiters, made on a key's first request and dropped whole on reload. */
export interface KeyLimiters {
  /** The limiter a key's requests go through: its own when it has `rps`/`rpm`, else `fallback`. */
  of<L extends Limiter | undefined>(who: ClientIdentity, fallback: L): L | KeyLimiter;
  windowOf(l: unknown): number | undefined;
}

/**
 * The per-key limiters of one config: each key's `rps` (per second) and `rpm` (per minute) are `@lb/ratelimit`
 * client limiters (the shared Redis store when configured) counting under the key's keyed hash, taken after the
 * server's own client limit. (`tpm` is counted with the budgets: `@lb/spend`'s `Budgets`, per UTC minute.)
 */
export function keyLimiters(make: (o: { requests: number; windowMs: number }) => Limiter): KeyLimiters {
  const byKey = new Map<string, KeyLimiter | null>();
  return {
    of(who, fallback) {
      let l = byKey.get(who.key.id);
      if (l === undefined) {
        const { rps, rpm } = who.key.limits;
        const parts: { l: Limiter; windowMs: number }[] = [];
        if (rps !== undefined) parts.push({ l: make({ requests: rps, windowMs: 1000 }), windowMs: 1000 });
        if (rpm !== undefined) parts.push({ l: make({ requests: rpm, windowMs: 60_000 }), windowMs: 60_000 });
        l = parts.length === 0 ? null : composite(parts);
        byKey.set(who.key.id, l);
      }
      if (l === null) return fallback;
      if (fallback === undefined) return l;
      return withServerLimit(fallback, l);
    },
    windowOf(l) {
      return (l as Partial<KeyLimiter>)?.windowMs;
    },
  };
}

function composite(parts: { l: Limiter; windowMs: number }[]): KeyLimiter {
  if (parts.length === 1) return { take: (k) => parts[0].l.take(k), windowMs: parts[0].windowMs };
  const out = {
    windowMs: parts[0].windowMs,
    take(k: string) {
      let last!: ReturnType<Limiter['take']>;
      for (const p of parts) {
        last = p.l.take(k);
        out.windowMs = p.windowMs;
        if (!last.allowed) return last;
      }
      return last;
    },
  };
  return out;
}

function withServerLimit(server: Limiter, own: KeyLimiter): KeyLimiter {
  const out = {
    windowMs: own.windowMs,
    take(k: string) {
      const r = server.take(k);
      if (!r.allowed) return r;
      const o = own.take(k);
      out.windowMs = own.windowMs;
      return o;
    },
  };
  return out;
}

/** A key as the admin API shows it: never its secret or hash. */
function keyView(k: VirtualKey): Record<string, unknown> {
  return {
    name: k.name,
    models: k.models ? [...k.models] : undefined,
    tags: k.tags,
    limits: k.limits,
    budgets: k.budgets,
    expires: k.expiresAt === undefined ? undefined : new Date(k.expiresAt).toISOString(),
  };
}

const MAX_BODY = 64 * 1024;

function readJson(req: IncomingMessage): Promise<Record<string, unknown> | Error> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (n > MAX_BODY) return resolve(new Error(`The body exceeds ${MAX_BODY} bytes`));
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (text === '') return resolve({});
      try {
        const v = JSON.parse(text) as unknown;
        resolve(
          v !== null && typeof v === 'object' && !Array.isArray(v)
            ? (v as Record<string, unknown>)
            : new Error('The body must be a JSON object'),
        );
      } catch (e) {
        resolve(new Error(`We could not parse the JSON body: ${(e as Error).message}`));
      }
    });
    req.on('error', (e) => resolve(e));
  });
}

/** Body fields of `POST /admin/keys`, snake_case as in `[[keys]]` (camelCase accepted too). */
const FIELDS: Record<string, keyof KeyConfig> = {
  name: 'name',
  models: 'models',
  tags: 'tags',
  rps: 'rps',
  rpm: 'rpm',
  tpm: 'tpm',
  budget_usd_day: 'budgetUsdDay',
  budgetUsdDay: 'budgetUsdDay',
  budget_usd_month: 'budgetUsdMonth',
  budgetUsdMonth: 'budgetUsdMonth',
  budget_tokens_day: 'budgetTokensDay',
  budgetTokensDay: 'budgetTokensDay',
  expires: 'expires',
};

function keyConfigOf(body: Record<string, unknown>): Omit<KeyConfig, 'key' | 'keySha256'> | Error {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (k === 'key' || k === 'key_sha256' || k === 'keySha256')
      return new Error(`${k}: the gateway makes the secret; send the key's settings only`);
    const f = FIELDS[k];
    if (f === undefined)
      return new Error(`Unknown field ${JSON.stringify(k)} (known: ${Object.keys(FIELDS).join(', ')})`);
    out[f] = v;
  }
  if (typeof out.name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(out.name))
    return new Error('name: required, 1 to 64 characters of A-Z a-z 0-9 . _ -');
  return out as Omit<KeyConfig, 'key' | 'keySha256'>;
}

function nameOf(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * The admin API's keys (behind the admin rules of `access.ts`, checked by the caller): `GET /admin/keys` lists (no
 * secret or hash), `POST /admin/keys` creates (the secret in the answer, once), `GET /admin/keys/{name}` reads a key
 * and its spend, `DELETE /admin/keys/{name}` revokes, `POST /admin/keys/{name}/rotate` gives it a new secret.
 */
export async function adminKeys(
  req: IncomingMessage,
  res: ServerResponse,
  p: string,
  method: string,
  wallet: Wallet,
  log: (msg: string, fields: Record<string, unknown>) => void,
): Promise<void> {
  if (p === '/admin/keys') {
    if (method === 'GET')
      return sendJson(res, 200, {
        object: 'list',
        store: wallet.vault.kind,
        data: wallet.ring.list().map(keyView),
      });
    if (method !== 'POST') return sendStatus(res, 405, `Use GET or POST for ${p}`);
    const body = await readJson(req);
    if (body instanceof Error) return sendStatus(res, 400, body.message);
    const conf = keyConfigOf(body);
    if (conf instanceof Error) return sendStatus(res, 400, conf.message);
    if (wallet.ring.byName(conf.name) !== undefined)
      return sendStatus(res, 409, `A key named ${JSON.stringify(conf.name)} exists already`);
    let made: Awaited<ReturnType<Wallet['create']>>;
    try {
      made = await wallet.create(conf);
    } catch (e) {
      return sendStatus(res, 400, (e as Error).message);
    }
    log('key created by admin', { key: conf.name });
    return sendJson(res, 201, { ...keyView(made.key), key: made.secret });
  }
  const m = /^\/admin\/keys\/([^/]+)(\/rotate)?$/.exec(p);
  const name = m ? nameOf(m[1]) : undefined;
  if (!m || name === undefined) return sendStatus(res, 404, `Unknown admin route ${method} ${p}`);
  if (m[2]) {
    if (method !== 'POST') return sendStatus(res, 405, `Use POST for ${p}`);
    const made = await wallet.rotate(name);
    if (!made) return sendStatus(res, 404, `Unknown key ${JSON.stringify(name)}`);
    log('key rotated by admin', { key: name });
    return sendJson(res, 200, { ...keyView(made.key), key: made.secret });
  }
  if (method === 'DELETE') {
    if (!(await wallet.revoke(name))) return sendStatus(res, 404, `Unknown key ${JSON.stringify(name)}`);
    log('key revoked by admin', { key: name });
    return sendJson(res, 200, { name, deleted: true });
  }
  if (method !== 'GET') return sendStatus(res, 405, `Use GET or DELETE for ${p}`);
  const k = wallet.ring.byName(name);
  if (!k) return sendStatus(res, 404, `Unknown key ${JSON.stringify(name)}`);
  const s = wallet.ledger.snapshot();
  const budgets = await wallet.budgets.snapshot(k);
  return sendJson(res, 200, {
    ...keyView(k),
    budgets: { ...k.budgets, ...budgets },
    spend: { today: s.today.byKey[k.id] ?? null, month: s.month.byKey[k.id] ?? null },
  });
}
