import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the fake Anthropic upstream does with one request. */
export type AnthropicBehaviour =
  /** Answer the Messages call (JSON, or SSE when the request asked to stream), with `text`. */
  | { type: 'ok'; text?: string; chunks?: string[]; intervalMs?: number }
  /** Answer a tool call (`stop_reason: tool_use`). */
  | { type: 'tool'; name: string; input: Record<string, unknown> }
  /** An Anthropic error response: `{ type: 'error', error: { type, message } }` with this status. */
  | { type: 'error'; status: number; errorType: string; message?: string; headers?: Record<string, string> }
  /** HTTP 200 SSE whose first event is `event: error` (how Anthropic reports overload after accepting a stream). */
  | {
      type: 'stream-error';
      errorType: string;
      message?: string;
      afterText?: string;
      /** Send the error event this long after `afterText` (default: at once, likely in the same packet). */
      errorAfterMs?: number;
    };

/** A stream that says "Hel", then 40 ms later reports Anthropic's `overloaded_error` (a break after the first byte). */
export const OVERLOADED_MID_STREAM: AnthropicBehaviour = Object.freeze({
  type: 'stream-error',
  errorType: 'overloaded_error',
  afterText: 'Hel',
  errorAfterMs: 40,
});

export interface FakeAnthropicRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  json: any;
}

export interface FakeAnthropic {
  /** Base URL including `/v1`. */
  url: string;
  requests: FakeAnthropicRequest[];
  next(...b: AnthropicBehaviour[]): void;
  count(suffix?: string): number;
  close(): Promise<void>;
}

/**
 * Starts a fake Anthropic Messages API on 127.0.0.1 (`POST /v1/messages`, `GET /v1/models`) answering in Anthropic's
 * wire format (JSON and SSE event stream), checking `x-api-key` (against `acceptKeys` if given) and
 * `anthropic-version`. Queue faults with `next()`.
 */
export async function startFakeAnthropic(
  opts: { acceptKeys?: string[]; model?: string } = {},
): Promise<FakeAnthropic> {
  const queue: AnthropicBehaviour[] = [];
  const requests: FakeAnthropicRequest[] = [];
  const sockets = new Set<Socket>();
  let seq = 0;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let json: any;
    try {
      json = raw ? JSON.parse(raw) : undefined;
    } catch {
      json = undefined;
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push({ method: req.method ?? 'GET', path, headers: req.headers, json });
    const key = String(req.headers['x-api-key'] ?? '');
    if (!key || (opts.acceptKeys && !opts.acceptKeys.includes(key))) {
      return error(res, 401, 'authentication_error', 'invalid x-api-key');
    }
    if (!req.headers['anthropic-version']) {
      return error(res, 400, 'invalid_request_error', 'anthropic-version: header is required');
    }
    if (req.method === 'GET' && path === '/v1/models') {
      return send(res, 200, {
        data: [
          {
            type: 'model',
            id: opts.model ?? 'claude-sonnet-4-5',
            display_name: 'Claude',
            created_at: '2025-09-29T00:00:00Z',
          },
        ],
        has_more: false,
      });
    }
    if (req.method !== 'POST' || path !== '/v1/messages')
      return error(res, 404, 'not_found_error', `Not found: ${path}`);
    if (!json || !Array.isArray(json.messages) || typeof json.max_tokens !== 'number') {
      return error(res, 400, 'invalid_request_error', 'messages and max_tokens are required');
    }
    const b = queue.shift() ?? { type: 'ok' };
    const id = `msg_fake${++seq}`;
    const model = json.model;
    if (b.type === 'error') return error(res, b.status, b.errorType, b.message ?? b.errorType, b.headers);
    if (b.type === 'stream-error') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (b.afterText) {
        res.write(sse('message_start', { type: 'message_start', message: message(id, model, [], null, 0) }));
        res.write(
          sse('content_block_delta', {
            type: 'content_block_delta',
            index: 0,
            delta: { type: 'text_delta', text: b.afterText },
          }),
        );
        if (b.errorAfterMs) await new Promise((r) => setTimeout(r, b.errorAfterMs));
      }
      res.end(
        sse('error', { type: 'error', error: { type: b.errorType, message: b.message ?? b.errorType } }),
      );
      return;
    }
    const input = JSON.stringify(json.messages).length >> 2;
    if (b.type === 'tool') {
      const content = [{ type: 'tool_use', id: `toolu_fake${seq}`, name: b.name, input: b.input }];
      if (!json.stream) return send(res, 200, message(id, model, content, 'tool_use', input, 12));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(
        sse('message_start', { type: 'message_start', message: message(id, model, [], null, input, 1) }),
      );
      res.write(
        sse('content_block_start', {
          type: 'content_block_start',
          index: 0,
          content_block: { ...content[0], input: {} },
        }),
      );
      const args = JSON.stringify(b.input);
      const half = args.length >> 1;
      for (const part of [args.slice(0, half), args.slice(half)]) {
        res.write(
          sse('content_block_delta', {
            type: 'content_block_delta',
            index: 0,
            delta: { type: 'input_json_delta', partial_json: part },
          }),
        );
      }
      res.write(sse('content_block_stop', { type: 'content_block_stop', index: 0 }));
      res.write(
        sse('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: 'tool_use', stop_sequence: null },
          usage: { output_tokens: 12 },
        }),
      );
      res.end(sse('message_stop', { type: 'message_stop' }));
      return;
    }
    const pieces = b.chunks ?? [b.text ?? 'Hello from Claude'];
    if (!json.stream) {
      return send(
        res,
        200,
        message(id, model, [{ type: 'text', text: pieces.join('') }], 'end_turn', input, pieces.length),
      );
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(
      sse('message_start', { type: 'message_start', message: message(id, model, [], null, input, 1) }),
    );
    res.write(
      sse('content_block_start', {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'text', text: '' },
      }),
    );
    res.write(sse('ping', { type: 'ping' }));
    for (const text of pieces) {
      if (b.intervalMs) await new Promise((r) => setTimeout(r, b.intervalMs));
      res.write(
        sse('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'text_delta', text },
        }),
      );
    }
    res.write(sse('content_block_stop', { type: 'content_block_stop', index: 0 }));
    res.write(
      sse('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: pieces.length },
      }),
    );
    res.end(sse('message_stop', { type: 'message_stop' }));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    next: (...b) => void queue.push(...b),
    count: (suffix = '') => requests.filter((r) => r.path.endsWith(suffix)).length,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function message(
  id: string,
  model: string,
  content: unknown[],
  stop: string | null,
  input: number,
  output = 1,
) {
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stop,
    stop_sequence: null,
    usage: { input_tokens: input, output_tokens: output },
  };
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_fake', ...headers });
  res.end(text);
}

function error(
  res: ServerResponse,
  status: number,
  type: string,
  message: string,
  headers?: Record<string, string>,
) {
  send(res, status, { type: 'error', error: { type, message } }, headers);
}
