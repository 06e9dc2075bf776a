import { LbError, type Router } from '@lb/core';
import type { Sink } from './attempt.js';

/**
 * Objects that live on the endpoint that created them (files, uploads, batches, vector stores, assistants, threads,
 * runs, fine-tuning jobs, stored Responses, conversations): the endpoint is remembered from the creating answer's
 * `id`, and every later call that names the id — in its path or body — goes to that endpoint only.
 */

/** The kinds of object lb remembers, by id prefix (OpenAI's). */
export type ObjectKind =
  | 'file'
  | 'upload'
  | 'batch'
  | 'vector_store'
  | 'assistant'
  | 'thread'
  | 'run'
  | 'fine_tuning_job'
  | 'response'
  | 'conversation';

const DAY = 86_400_000;

/**
 * How long an object's endpoint is remembered after it was created, ms. 30 days for files, batches, stored
 * responses, vector stores, assistants, threads, fine-tuning jobs and conversations; 1 day for uploads (OpenAI
 * expires an unfinished upload after an hour) and runs (a run ends within hours).
 */
export const AFFINITY_TTL_MS: Readonly<Record<ObjectKind, number>> = {
  file: 30 * DAY,
  upload: DAY,
  batch: 30 * DAY,
  vector_store: 30 * DAY,
  assistant: 30 * DAY,
  thread: 30 * DAY,
  run: DAY,
  fine_tuning_job: 30 * DAY,
  response: 30 * DAY,
  conversation: 30 * DAY,
};

const PREFIXES: readonly (readonly [string, ObjectKind])[] = [
  ['file-', 'file'],
  ['upload_', 'upload'],
  ['batch_', 'batch'],
  ['vs_', 'vector_store'],
  ['asst_', 'assistant'],
  ['thread_', 'thread'],
  ['run_', 'run'],
  ['ftjob-', 'fine_tuning_job'],
  ['resp_', 'response'],
  ['conv_', 'conversation'],
];

/** The kind of object an id names, by its prefix; undefined for anything else. */
export function objectKindOf(id: string): ObjectKind | undefined {
  for (const [p, k] of PREFIXES) if (id.startsWith(p) && id.length > p.length && id.length <= 256) return k;
  return undefined;
}

/** The object routes' first path segments, by their first character (a request pays a char read and a compare). */
const ROUTES: Readonly<Record<string, readonly string[]>> = {
  f: ['files', 'fine_tuning'],
  u: ['uploads'],
  b: ['batches'],
  v: ['vector_stores'],
  a: ['assistants'],
  t: ['threads'],
  r: ['responses'],
  c: ['conversations'],
};

/**
 * True when `path` (the OpenAI path, `/files/…`, query allowed) is an object route: only these pay for affinity
 * (a look-up before routing, the created id read from the answer). Chat completions and embeddings never do.
 */
export function isObjectRoute(path: string): boolean {
  const names = ROUTES[path[1]];
  if (names === undefined) return false;
  for (const n of names) {
    if (!path.startsWith(n, 1)) continue;
    const c = path.charCodeAt(n.length + 1);
    // the whole segment: end, '/' or '?'
    if (Number.isNaN(c) || c === 47 || c === 63) return true;
  }
  return false;
}

/** Body fields that name objects (a batch's `input_file_id`, a Response's `previous_response_id`…). */
const BODY_FIELDS = [
  'input_file_id',
  'file_id',
  'previous_response_id',
  'conversation',
  'assistant_id',
  'thread_id',
  'training_file',
  'validation_file',
  'vector_store_id',
] as const;
const BODY_LISTS = ['file_ids', 'vector_store_ids'] as const;

/**
 * The object ids a call names: path segments first, then body fields (`input_file_id`, `previous_response_id`,
 * `conversation`, `file_ids`…). Only ids with a known prefix count.
 */
export function objectIdsIn(path: string, json: Record<string, unknown> | undefined): string[] {
  const out: string[] = [];
  const q = path.indexOf('?');
  for (const seg of (q < 0 ? path : path.slice(0, q)).split('/')) {
    if (seg === '') continue;
    const id = safeDecode(seg);
    if (objectKindOf(id) !== undefined && !out.includes(id)) out.push(id);
  }
  if (json !== undefined) {
    for (const f of BODY_FIELDS) {
      let v = json[f];
      if (v !== null && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string')
        v = (v as { id: string }).id;
      if (typeof v === 'string' && objectKindOf(v) !== undefined && !out.includes(v)) out.push(v);
    }
    for (const f of BODY_LISTS) {
      const v = json[f];
      if (Array.isArray(v))
        for (const x of v)
          if (typeof x === 'string' && objectKindOf(x) !== undefined && !out.includes(x)) out.push(x);
    }
  }
  return out;
}

function safeDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Where objects' endpoints are kept: in memory, or in Redis so that replicas agree. Values may be promises. */
export interface AffinityStore {
  /** The endpoint id remembered for `id`, if any (and not expired). */
  get(id: string): string | undefined | Promise<string | undefined>;
  /** Remembers `endpointId` for `id` for `ttlMs`. */
  set(id: string, endpointId: string, ttlMs: number): void | Promise<void>;
  /** Forgets `id` (the object was deleted). */
  delete(id: string): void | Promise<void>;
}

/**
 * An {@link AffinityStore} in this process's memory: at most `maxEntries` ids (default 1,000,000; the oldest go
 * first), each until its TTL.
 */
export class MemoryAffinityStore implements AffinityStore {
  readonly #map = new Map<string, { endpointId: string; until: number }>();
  readonly #max: number;

  constructor(options: { maxEntries?: number } = {}) {
    this.#max = options.maxEntries ?? 1_000_000;
  }

  get(id: string): string | undefined {
    const e = this.#map.get(id);
    if (e === undefined) return undefined;
    if (e.until <= Date.now()) {
      this.#map.delete(id);
      return undefined;
    }
    return e.endpointId;
  }

  set(id: string, endpointId: string, ttlMs: number): void {
    this.#map.delete(id);
    if (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value as string);
    this.#map.set(id, { endpointId, until: Date.now() + ttlMs });
  }

  delete(id: string): void {
    this.#map.delete(id);
  }

  /** Ids remembered now (expired ones included until read). */
  get size(): number {
    return this.#map.size;
  }
}

/** The few Redis commands {@link RedisAffinityStore} uses (an ioredis client has them). */
export interface AffinityRedisLike {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, px: 'PX', ms: number): Promise<unknown>;
  del(key: string): Promise<unknown>;
}

/** An {@link AffinityStore} in Redis (`lb:obj:<id>` → endpoint id, with the kind's TTL), shared by replicas. */
export class RedisAffinityStore implements AffinityStore {
  readonly #client: AffinityRedisLike;
  readonly #prefix: string;
  readonly #onError: (err: unknown) => void;

  constructor(
    client: AffinityRedisLike,
    options: { prefix?: string; onError?: (err: unknown) => void } = {},
  ) {
    this.#client = client;
    this.#prefix = options.prefix ?? 'lb:obj:';
    this.#onError = options.onError ?? (() => {});
  }

  async get(id: string): Promise<string | undefined> {
    try {
      return (await this.#client.get(this.#prefix + id)) ?? undefined;
    } catch (e) {
      // Redis away: the object's endpoint is unknown here, the call routes as any other (and says so in the log).
      this.#onError(e);
      return undefined;
    }
  }

  async set(id: string, endpointId: string, ttlMs: number): Promise<void> {
    try {
      await this.#client.set(this.#prefix + id, endpointId, 'PX', Math.max(1, Math.round(ttlMs)));
    } catch (e) {
      this.#onError(e);
    }
  }

  async delete(id: string): Promise<void> {
    try {
      await this.#client.del(this.#prefix + id);
    } catch (e) {
      this.#onError(e);
    }
  }
}

/** Request header: pin any call to one endpoint (by id). */
export const PIN_HEADER = 'x-lb-endpoint';

/**
 * Where a call must go, or undefined when anywhere will do: the endpoint `x-lb-endpoint` names (checked: an unknown
 * id is a 400 `unknown_endpoint`), else — on object routes — the endpoint remembered for the first id the call names.
 */
export async function pinnedEndpoint(
  router: Router,
  store: AffinityStore | undefined,
  header: string | undefined,
  path: string,
  json: (() => Record<string, unknown> | undefined) | undefined,
): Promise<{ endpointId: string; objectId?: string } | undefined> {
  if (header !== undefined) {
    const id = header.trim();
    if (router.getEndpoint(id) === undefined)
      throw new LbError(`x-lb-endpoint: no endpoint has the id ${JSON.stringify(id.slice(0, 64))}`, {
        status: 400,
        type: 'invalid_request_error',
        code: 'unknown_endpoint',
      });
    return { endpointId: id };
  }
  if (store === undefined || !isObjectRoute(path)) return undefined;
  for (const id of objectIdsIn(path, json?.())) {
    const ep = await store.get(id);
    if (ep !== undefined) return { endpointId: ep, objectId: id };
  }
  return undefined;
}

/**
 * The 503 for a call pinned to an endpoint that cannot serve now, naming the endpoint, its state and what its last
 * attempt got (from `error`, the router's `NoHealthyEndpointError`, when given).
 */
export function pinnedUnavailable(
  router: Router,
  endpointId: string,
  objectId: string | undefined,
  error?: unknown,
): LbError {
  const h = router.getHealth(endpointId);
  const state = h === undefined ? 'removed' : h.status;
  const last = (
    error as { attempts?: readonly { kind: string; status?: number }[] } | undefined
  )?.attempts?.at(-1);
  const why = last === undefined ? '' : `, last attempt: ${last.kind}${last.status ? ` ${last.status}` : ''}`;
  const what =
    objectId === undefined ? 'The pinned endpoint' : `${JSON.stringify(objectId)} lives on endpoint`;
  return new LbError(
    `${what} ${JSON.stringify(endpointId)}, which cannot serve now (state: ${state}${why}); no other endpoint knows it`,
    { status: 503, type: 'server_error', code: 'pinned_endpoint_unavailable' },
  );
}

/** The largest answer prefix read for a created object's id. */
const ID_SCAN_BYTES = 8192;
const ID_RE =
  /"id"\s*:\s*"((?:file-|upload_|batch_|vs_|asst_|thread_|run_|ftjob-|resp_|conv_)[^"\\]{1,240})"/;

/**
 * The id of the object an answer created (`POST /files`, `/batches`, `/responses` with `store`…): the first
 * `"id": "<known prefix>…"` in the first 8 KiB of its body (OpenAI objects lead with their id; a Responses stream's
 * `response.created` event carries it).
 */
export function createdIdIn(text: string): string | undefined {
  return ID_RE.exec(text)?.[1];
}

/** True when a call creates an object whose id the answer carries (a POST to a collection, not to an id). */
export function createsObject(
  method: string,
  path: string,
  json: Record<string, unknown> | undefined,
): boolean {
  if (method !== 'POST' || !isObjectRoute(path)) return false;
  if (path.startsWith('/responses') && json?.store === false) return false;
  return true;
}

/**
 * A sink that passes a created object's answer on as it comes and reads the object's id from its first bytes; `found`
 * is called once with it.
 */
export class CreatedIdTap implements Sink {
  readonly #inner: Sink;
  readonly #found: (id: string) => void;
  #text = '';
  #done = false;
  readonly #decoder = new TextDecoder();

  constructor(inner: Sink, found: (id: string) => void) {
    this.#inner = inner;
    this.#found = found;
  }

  data(chunk: Uint8Array): boolean {
    if (!this.#done) this.#look(this.#decoder.decode(chunk, { stream: true }));
    return this.#inner.data(chunk);
  }

  end(): void {
    this.#inner.end();
  }

  error(err: Error): void {
    this.#inner.error(err);
  }

  #look(s: string): void {
    this.#text += s;
    const id = createdIdIn(this.#text);
    if (id !== undefined) {
      this.#done = true;
      this.#text = '';
      this.#found(id);
    } else if (this.#text.length > ID_SCAN_BYTES) {
      this.#done = true;
      this.#text = '';
    }
  }
}

/** Remembers that `id` lives on `endpointId`, with its kind's TTL. */
export function rememberObject(
  store: AffinityStore,
  id: string,
  endpointId: string,
  ttl: Partial<Record<ObjectKind, number>> = AFFINITY_TTL_MS,
): void | Promise<void> {
  const kind = objectKindOf(id);
  if (kind === undefined) return;
  return store.set(id, endpointId, ttl[kind] ?? AFFINITY_TTL_MS[kind]);
}
