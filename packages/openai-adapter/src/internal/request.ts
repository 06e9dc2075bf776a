import { stripHopByHop } from '@lb/providers';

const encoder = new TextEncoder();

/** One caller request, read once: replayable across attempts. */
export interface ReadRequest {
  method: string;
  /** URL as the caller gave it. */
  url: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
  json: Record<string, any> | undefined;
  /** `model` form field of a multipart body. */
  formModel: string | undefined;
  signal: AbortSignal | undefined;
}

type FetchInput = string | URL | Request;

/**
 * Reads what a fetch call carries: method, headers (hop-by-hop and credentials stripped), body bytes (read once;
 * FormData, Blob, URLSearchParams and streams are serialised once keeping their content type and multipart
 * boundary) and, for JSON bodies, the parsed object.
 */
export async function readRequest(input: FetchInput, init: RequestInit | undefined): Promise<ReadRequest> {
  let url: string;
  let method = init?.method;
  let rawHeaders: HeadersInit | undefined = init?.headers;
  let body: unknown = init?.body;
  let signal = init?.signal ?? undefined;
  if (typeof input === 'string') url = input;
  else if (input instanceof URL) url = input.href;
  else {
    // A Request object: its fields, unless init overrides them.
    url = input.url;
    method ??= input.method;
    rawHeaders ??= input.headers;
    signal ??= input.signal;
    if (body === undefined && input.body !== null) body = new Uint8Array(await input.arrayBuffer());
  }
  const headers = stripHopByHop(
    rawHeaders === undefined
      ? undefined
      : Array.isArray(rawHeaders)
        ? new Headers(rawHeaders)
        : (rawHeaders as Record<string, string> | Headers),
  );
  let bytes: Uint8Array | undefined;
  let text: string | undefined;
  let formModel: string | undefined;
  if (body === undefined || body === null) bytes = undefined;
  else if (typeof body === 'string') {
    text = body;
    bytes = encoder.encode(body);
  } else if (body instanceof Uint8Array) bytes = body;
  else if (ArrayBuffer.isView(body)) bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  else if (body instanceof ArrayBuffer) bytes = new Uint8Array(body);
  else {
    if (typeof FormData !== 'undefined' && body instanceof FormData) {
      const m = body.get('model');
      if (typeof m === 'string') formModel = m;
    }
    // FormData, Blob, URLSearchParams, ReadableStream: serialise once; Response picks the content type
    // (with the multipart boundary it generated), which must replace any the caller set.
    const r = new Response(body as BodyInit);
    bytes = new Uint8Array(await r.arrayBuffer());
    const ct = r.headers.get('content-type');
    if (ct) headers['content-type'] = ct;
  }
  let json: Record<string, any> | undefined;
  if (bytes !== undefined && bytes.length > 0 && formModel === undefined) {
    const ct = headers['content-type'];
    if (ct === undefined ? bytes[0] === 123 : ct.includes('json')) {
      try {
        const parsed = JSON.parse(text ?? new TextDecoder().decode(bytes));
        if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed;
      } catch {
        json = undefined;
      }
    }
  }
  return {
    method: (method ?? 'GET').toUpperCase(),
    url,
    headers,
    body: bytes,
    json,
    formModel,
    signal,
  };
}
