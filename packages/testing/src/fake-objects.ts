// The fake upstream's objects: files, batches and stored responses it creates, lists, reads and deletes (what lb's
// object affinity is tested against).
import type { ServerResponse } from 'node:http';
import { sendJson } from './fake-json.js';
import type { RecordedRequest } from './fake-upstream.js';

let objectSeq = 0;

function notFound(res: ServerResponse, what: string, id: string) {
  sendJson(res, 404, {
    error: { message: `No such ${what}: '${id}'`, type: 'invalid_request_error', param: 'id', code: null },
  });
}

/**
 * Files, batches and stored responses, held by this upstream only (`objects`): what lb's object affinity is tested
 * against. Returns false for any other route (the usual answers apply).
 */
export function answerObject(
  rec: RecordedRequest,
  res: ServerResponse,
  name: string,
  objects: Map<string, Record<string, unknown>>,
): boolean {
  const p = rec.path.replace(/^\/v1/, '');
  const m = rec.method;
  const created = Math.floor(Date.now() / 1000);
  const parts = p.split('/').filter(Boolean);
  const [coll, id, sub] = parts;
  if (coll !== 'files' && coll !== 'batches' && coll !== 'responses') return false;
  const h = { 'x-upstream': name };
  const own = (kind: string) => [...objects.values()].filter((o) => o.object === kind);
  if (coll === 'files') {
    if (id === undefined && m === 'POST') {
      const fid = `file-${name}${++objectSeq}`;
      const filename = /filename="([^"]+)"/.exec(rec.raw.toString('latin1'))?.[1] ?? 'upload';
      const purpose = /name="purpose"\r\n\r\n([^\r]+)/.exec(rec.raw.toString('latin1'))?.[1] ?? 'batch';
      const f = { id: fid, object: 'file', bytes: rec.raw.length, created_at: created, filename, purpose };
      objects.set(fid, f);
      sendJson(res, 200, f, h);
      return true;
    }
    if (id === undefined && m === 'GET') {
      sendJson(res, 200, { object: 'list', data: own('file'), has_more: false }, h);
      return true;
    }
    const f = id === undefined ? undefined : objects.get(id);
    if (id === undefined || f === undefined || f.object !== 'file') {
      notFound(res, 'File', id ?? '');
      return true;
    }
    if (m === 'DELETE') {
      objects.delete(id);
      sendJson(res, 200, { id, object: 'file', deleted: true }, h);
    } else if (sub === 'content') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...h });
      res.end(`content of ${id} on ${name}`);
    } else sendJson(res, 200, f, h);
    return true;
  }
  if (coll === 'batches') {
    if (id === undefined && m === 'POST') {
      const input = rec.json?.input_file_id;
      if (typeof input !== 'string' || !objects.has(input)) {
        sendJson(res, 400, {
          error: {
            message: `Invalid 'input_file_id': '${input}'. File not found.`,
            type: 'invalid_request_error',
            param: 'input_file_id',
            code: null,
          },
        });
        return true;
      }
      const bid = `batch_${name}${++objectSeq}`;
      const batch = {
        id: bid,
        object: 'batch',
        endpoint: rec.json?.endpoint ?? '/v1/chat/completions',
        input_file_id: input,
        completion_window: rec.json?.completion_window ?? '24h',
        status: 'validating',
        created_at: created,
      };
      objects.set(bid, batch);
      sendJson(res, 200, batch, h);
      return true;
    }
    if (id === undefined && m === 'GET') {
      sendJson(res, 200, { object: 'list', data: own('batch'), has_more: false }, h);
      return true;
    }
    const b = id === undefined ? undefined : objects.get(id);
    if (id === undefined || b === undefined || b.object !== 'batch') {
      notFound(res, 'Batch', id ?? '');
      return true;
    }
    if (sub === 'cancel') b.status = 'cancelling';
    sendJson(res, 200, b, h);
    return true;
  }
  // responses
  if (id === undefined && m === 'POST') {
    const prev = rec.json?.previous_response_id;
    if (typeof prev === 'string' && !objects.has(prev)) {
      sendJson(res, 404, {
        error: {
          message: `Previous response with id '${prev}' not found.`,
          type: 'invalid_request_error',
          param: 'previous_response_id',
          code: 'previous_response_not_found',
        },
      });
      return true;
    }
    const rid = `resp_${name}${++objectSeq}`;
    const r = {
      id: rid,
      object: 'response',
      created_at: created,
      status: 'completed',
      model: rec.json?.model ?? 'gpt-4o-mini',
      previous_response_id: prev ?? null,
      output: [
        {
          type: 'message',
          id: `msg_${objectSeq}`,
          status: 'completed',
          role: 'assistant',
          content: [{ type: 'output_text', text: `Hello from ${name}`, annotations: [] }],
        },
      ],
      usage: { input_tokens: 5, output_tokens: 6, total_tokens: 11 },
    };
    if (rec.json?.store !== false) objects.set(rid, r);
    sendJson(res, 200, r, h);
    return true;
  }
  const r = id === undefined ? undefined : objects.get(id);
  if (id === undefined || r === undefined || r.object !== 'response') {
    notFound(res, 'Response', id ?? '');
    return true;
  }
  if (m === 'DELETE') {
    objects.delete(id);
    sendJson(res, 200, { id, object: 'response', deleted: true }, h);
  } else sendJson(res, 200, r, h);
  return true;
}
