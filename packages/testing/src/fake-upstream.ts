import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { sendJson } from './fake-json.js';
import { answerObject } from './fake-objects.js';

/** What the fake upstream does with one request. */
export type Behaviour =
  | { type: 'ok'; delayMs?: number; content?: string; usage?: Usage; headers?: Record<string, string> }
  | { type: 'status'; status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number }
  /** Destroy the connection before answering (ECONNRESET / "socket hang up" at the client). */
  | { type: 'reset'; delayMs?: number }
  /** Accept and never answer. */
  | { type: 'hang' }
  /** Stream SSE: `chunks` content pieces, `intervalMs` apart; `dropAfter` destroys the socket after that many chunks. */
  | {
      type: 'stream';
      chunks?: string[];
      intervalMs?: number;
      firstByteDelayMs?: number;
      /** Send the headers at once, then wait this long before the first event. */
      firstEventDelayMs?: number;
      dropAfter?: number;
      /** Send this SSE error event (then end) instead of content, after `dropAfter` chunks (default 0). */
      errorEvent?: unknown;
      usage?: Usage;
    }
  | { type: 'custom'; handle: (req: RecordedRequest, res: ServerResponse) => void };

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** Path and query. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  /** Parsed JSON body, when the body was JSON. */
  json: any;
  at: number;
}

export interface FakeUpstreamOptions {
  /** Name put into responses (`system_fingerprint`) so tests can see who answered. */
  name?: string;
  /** Behaviour when no queued one is left. Default `{ type: 'ok' }`. */
  defaultBehaviour?: Behaviour | ((req: RecordedRequest) => Behaviour);
  /** Keys the upstream accepts (Bearer or api-key); others get 401. Default: any. */
  acceptKeys?: string[];
  /** Models listed by GET /models. */
  models?: string[];
  /** Port to listen on (127.0.0.1). Default 0: a free one. A known one brings an upstream back where one was refused. */
  port?: number;
}

export interface FakeUpstream {
  name: string;
  /** Base URL including `/v1`. */
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Queues behaviours for the next requests, in order. */
  next(...b: Behaviour[]): void;
  /** Replaces the default behaviour. */
  setDefault(b: Behaviour | ((req: RecordedRequest) => Behaviour)): void;
  /** Keys accepted from now on (undefined: any). */
  setAcceptKeys(keys: string[] | undefined): void;
  /** Requests seen whose path ends with `suffix`. */
  count(suffix?: string): number;
  /** Requests whose connection closed before the response ended (client went away). */
  aborted: number;
  /**
   * The objects this upstream holds (files, batches, stored responses), by id: created by `POST /files`,
   * `POST /batches`, `POST /responses`; read, used and deleted only here (any other upstream answers 404).
   */
  objects: ReadonlyMap<string, Record<string, unknown>>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a fake OpenAI-compatible upstream on 127.0.0.1 that answers in OpenAI's wire format: chat completions
 * (JSON and SSE), completions, embeddings, models, images, audio (speech: binary; transcriptions: multipart in),
 * moderations, responses, files. Behaviours can be queued to inject faults.
 */
export async function startFakeUpstream(opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const name = opts.name ?? 'upstream';
  const queue: Behaviour[] = [];
  let def: Behaviour | ((req: RecordedRequest) => Behaviour) = opts.defaultBehaviour ?? { type: 'ok' };
  let acceptKeys = opts.acceptKeys;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const state = { aborted: 0 };
  const objects = new Map<string, Record<string, unknown>>();

  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    let json: any;
    const ct = String(req.headers['content-type'] ?? '');
    if (ct.includes('json') && raw.length) {
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        json = undefined;
      }
    }
    const u = new URL(req.url ?? '/', 'http://x');
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: u.pathname,
      url: req.url ?? '/',
      headers: req.headers,
      raw,
      json,
      at: Date.now(),
    };
    requests.push(rec);
    res.on('close', () => {
      if (!res.writableFinished) state.aborted++;
    });
    if (acceptKeys) {
      const auth =
        String(req.headers.authorization ?? '').replace(/^Bearer\s+/i, '') ||
        String(req.headers['api-key'] ?? '');
      if (!acceptKeys.includes(auth)) {
        return sendJson(res, 401, {
          error: {
            message: `Incorrect API key provided: ${mask(auth)}.`,
            type: 'invalid_request_error',
            param: null,
            code: 'invalid_api_key',
          },
        });
      }
    }
    const b = queue.shift() ?? (typeof def === 'function' ? def(rec) : def);
    if (b.type === 'ok' && !b.delayMs && rec.json?.stream !== true && answerObject(rec, res, name, objects))
      return;
    try {
      await behave(
        b,
        rec,
        req,
        res,
        name,
        opts.models ?? ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'],
      );
    } catch {
      res.destroy();
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    url: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    next: (...b) => {
      queue.push(...b);
    },
    setDefault: (b) => {
      def = b;
    },
    setAcceptKeys: (k) => {
      acceptKeys = k;
    },
    count: (suffix) => (suffix ? requests.filter((r) => r.path.endsWith(suffix)).length : requests.length),
    get aborted() {
      return state.aborted;
    },
    objects,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function mask(k: string): string {
  return k.length > 8 ? `${k.slice(0, 3)}*****${k.slice(-4)}` : '***';
}

let idCounter = 0;

function completionFor(rec: RecordedRequest, name: string, content: string, usage?: Usage) {
  const model = rec.json?.model ?? 'gpt-4o-mini';
  const created = Math.floor(Date.now() / 1000);
  const u = usage ?? { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 };
  return {
    id: `chatcmpl-${++idCounter}`,
    object: 'chat.completion',
    created,
    model,
    system_fingerprint: name,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: u,
  };
}

async function behave(
  b: Behaviour,
  rec: RecordedRequest,
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  models: string[],
): Promise<void> {
  switch (b.type) {
    case 'hang':
      return;
    case 'reset':
      if (b.delayMs) await sleep(b.delayMs);
      req.socket.destroy();
      return;
    case 'custom':
      b.handle(rec, res);
      return;
    case 'status':
      if (b.delayMs) await sleep(b.delayMs);
      return sendJson(
        res,
        b.status,
        b.body ?? {
          error: {
            message: `${name} failed with ${b.status}`,
            type:
              b.status === 429
                ? 'rate_limit_error'
                : b.status >= 500
                  ? 'server_error'
                  : 'invalid_request_error',
            param: null,
            code: b.status === 429 ? 'rate_limit_exceeded' : null,
          },
        },
        b.headers,
      );
    case 'stream':
      return stream(b, rec, res, name);
    case 'ok': {
      if (b.delayMs) await sleep(b.delayMs);
      if (rec.json?.stream === true) return stream({ type: 'stream', usage: b.usage }, rec, res, name);
      return answer(rec, res, name, models, b);
    }
  }
}

function answer(
  rec: RecordedRequest,
  res: ServerResponse,
  name: string,
  models: string[],
  b: { content?: string; usage?: Usage; headers?: Record<string, string> },
) {
  const p = rec.path.replace(/^\/v1/, '');
  const h = { 'x-request-id': `req_${name}_${idCounter}`, ...b.headers };
  const created = Math.floor(Date.now() / 1000);
  if (p === '/chat/completions')
    return sendJson(res, 200, completionFor(rec, name, b.content ?? `Hello from ${name}`, b.usage), h);
  if (p === '/completions') {
    return sendJson(
      res,
      200,
      {
        id: `cmpl-${++idCounter}`,
        object: 'text_completion',
        created,
        model: rec.json?.model ?? 'gpt-3.5-turbo-instruct',
        system_fingerprint: name,
        choices: [
          { text: b.content ?? `Hello from ${name}`, index: 0, logprobs: null, finish_reason: 'stop' },
        ],
        usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
      },
      h,
    );
  }
  if (p === '/embeddings') {
    const input = rec.json?.input;
    const n = Array.isArray(input) ? input.length : 1;
    return sendJson(
      res,
      200,
      {
        object: 'list',
        data: Array.from({ length: n }, (_, i) => ({
          object: 'embedding',
          index: i,
          embedding: [0.1, -0.2, 0.3],
        })),
        model: rec.json?.model ?? 'text-embedding-3-small',
        usage: { prompt_tokens: 4 * n, total_tokens: 4 * n },
      },
      h,
    );
  }
  if (p === '/models') {
    return sendJson(
      res,
      200,
      { object: 'list', data: models.map((id) => ({ id, object: 'model', created, owned_by: name })) },
      h,
    );
  }
  if (p.startsWith('/models/')) {
    return sendJson(
      res,
      200,
      { id: decodeURIComponent(p.slice(8)), object: 'model', created, owned_by: name },
      h,
    );
  }
  if (p === '/images/generations') {
    return sendJson(
      res,
      200,
      { created, data: [{ url: `https://images.example/${name}.png`, revised_prompt: rec.json?.prompt }] },
      h,
    );
  }
  if (p === '/audio/speech') {
    const audio = Buffer.from(`ID3-fake-mp3-from-${name}`);
    res.writeHead(200, { 'content-type': 'audio/mpeg', 'content-length': audio.length, ...h });
    res.end(audio);
    return;
  }
  if (p === '/audio/transcriptions' || p === '/audio/translations') {
    const ct = String(rec.headers['content-type'] ?? '');
    const isMultipart = ct.startsWith('multipart/form-data');
    const fileMatch = /filename="([^"]+)"/.exec(rec.raw.toString('latin1'));
    return sendJson(
      res,
      200,
      { text: `${name} heard ${isMultipart ? (fileMatch?.[1] ?? 'a file') : 'nothing'}` },
      h,
    );
  }
  if (p === '/moderations') {
    return sendJson(
      res,
      200,
      {
        id: `modr-${++idCounter}`,
        model: 'omni-moderation-latest',
        results: [{ flagged: false, categories: {}, category_scores: {} }],
      },
      h,
    );
  }
  if (p === '/responses') {
    return sendJson(
      res,
      200,
      {
        id: `resp_${++idCounter}`,
        object: 'response',
        created_at: created,
        status: 'completed',
        model: rec.json?.model ?? 'gpt-4o-mini',
        output: [
          {
            type: 'message',
            id: `msg_${idCounter}`,
            status: 'completed',
            role: 'assistant',
            content: [{ type: 'output_text', text: b.content ?? `Hello from ${name}`, annotations: [] }],
          },
        ],
        usage: { input_tokens: 5, output_tokens: 6, total_tokens: 11 },
      },
      h,
    );
  }
  if (p === '/files' && rec.method === 'GET') {
    return sendJson(res, 200, { object: 'list', data: [], has_more: false }, h);
  }
  if (p === '/files') {
    return sendJson(
      res,
      200,
      {
        id: `file-${++idCounter}`,
        object: 'file',
        bytes: rec.raw.length,
        created_at: created,
        filename: 'upload',
        purpose: 'batch',
      },
      h,
    );
  }
  return sendJson(res, 200, { ok: true, upstream: name, path: p, method: rec.method }, h);
}

async function stream(
  b: Extract<Behaviour, { type: 'stream' }>,
  rec: RecordedRequest,
  res: ServerResponse,
  name: string,
): Promise<void> {
  const model = rec.json?.model ?? 'gpt-4o-mini';
  const id = `chatcmpl-${++idCounter}`;
  const created = Math.floor(Date.now() / 1000);
  const pieces = b.chunks ?? ['Hello', ' from', ` ${name}`];
  if (b.firstByteDelayMs) await sleep(b.firstByteDelayMs);
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const send = (obj: unknown) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
  if (b.firstEventDelayMs) {
    res.flushHeaders();
    await sleep(b.firstEventDelayMs);
    if (res.destroyed) return;
  }
  const chunk = (delta: object, finish: string | null = null) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    system_fingerprint: name,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  if (b.errorEvent !== undefined && !b.dropAfter) {
    send(b.errorEvent);
    res.end();
    return;
  }
  send(chunk({ role: 'assistant', content: '' }));
  for (let i = 0; i < pieces.length; i++) {
    if (b.dropAfter !== undefined && i >= b.dropAfter) {
      if (b.errorEvent !== undefined) {
        send(b.errorEvent);
        res.end();
      } else {
        res.socket?.destroy();
      }
      return;
    }
    if (b.intervalMs && i > 0) await sleep(b.intervalMs);
    if (res.destroyed) return;
    send(chunk({ content: pieces[i] }));
  }
  send(chunk({}, 'stop'));
  if (rec.json?.stream_options?.include_usage) {
    send({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [],
      usage: b.usage ?? {
        prompt_tokens: 9,
        completion_tokens: pieces.length,
        total_tokens: 9 + pieces.length,
      },
    });
  }
  res.write('data: [DONE]\n\n');
  res.end();
}
