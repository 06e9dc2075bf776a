import { errorEventStatus, STATUS_OF_ERROR_TYPE } from '../stream-errors.js';
import type { StreamFailure } from '../types.js';

/** Anthropic error type → OpenAI's `{ type, code }`. */
const OPENAI_OF: Record<string, [type: string, code: string]> = {
  invalid_request_error: ['invalid_request_error', 'invalid_request'],
  authentication_error: ['invalid_request_error', 'invalid_api_key'],
  billing_error: ['insufficient_quota', 'insufficient_quota'],
  permission_error: ['invalid_request_error', 'permission_denied'],
  not_found_error: ['invalid_request_error', 'not_found'],
  request_too_large: ['invalid_request_error', 'request_too_large'],
  rate_limit_error: ['rate_limit_error', 'rate_limit_exceeded'],
  api_error: ['server_error', 'server_error'],
  timeout_error: ['server_error', 'timeout'],
  overloaded_error: ['server_error', 'overloaded'],
};

/** The HTTP status of an Anthropic error type (500 for unknown types). */
export function anthropicErrorStatus(type: string): number {
  return STATUS_OF_ERROR_TYPE[type] ?? 500;
}

/** OpenAI's error body for an Anthropic error. */
export function openAIErrorFromAnthropic(
  type: string,
  message: string,
  status: number,
): { error: { message: string; type: string; code: string; param: null } } {
  const mapped = OPENAI_OF[type];
  const [t, code] = mapped ?? [
    status >= 500 ? 'server_error' : 'invalid_request_error',
    type || `http_${status}`,
  ];
  return { error: { message, type: t, code, param: null } };
}

/** Parses one SSE event block's data (the lines after `data:`), or undefined. */
function eventData(block: string): string | undefined {
  let data: string | undefined;
  for (const line of block.split('\n')) {
    if (line.startsWith('data:')) {
      const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      data = data === undefined ? v : `${data}\n${v}`;
    }
  }
  return data;
}

/**
 * The failure carried by an SSE error event at the start of `text`, in either dialect: Anthropic's
 * `event: error` / `data: {"type":"error","error":{…}}`, or OpenAI-compatible servers' `data: {"error":{…}}`.
 * Undefined when the first event is not an error. `status` is the HTTP status the same error has as a response
 * (overloaded → 529, rate limit → 429), so a gateway can classify it and fail over before writing a byte.
 *
 * @example
 * const failure = streamErrorOf(firstChunkText);
 * if (failure) throw Object.assign(new Error(failure.message), { status: failure.status });
 */
export function streamErrorOf(text: string): StreamFailure | undefined {
  const normalised = text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
  for (const block of normalised.split('\n\n')) {
    if (block.trim() === '') continue;
    const data = eventData(block);
    const isErrorName = /^event:\s*error\s*$/m.test(block);
    if (data === undefined) {
      if (isErrorName) return { status: 500, type: 'api_error', message: 'upstream stream error' };
      continue; // comments / pings without data
    }
    if (data === '[DONE]') return undefined;
    let parsed: any;
    try {
      parsed = JSON.parse(data);
    } catch {
      return isErrorName ? { status: 500, type: 'api_error', message: data.slice(0, 500) } : undefined;
    }
    if (parsed && typeof parsed === 'object') {
      if (parsed.type === 'ping') continue;
      const err = parsed.error;
      if (err && typeof err === 'object') {
        const type = String(err.type ?? err.code ?? 'api_error');
        const status = errorEventStatus({ status: parsed.status, ...err }, 500);
        return { status, type, message: String(err.message ?? type) };
      }
      if (isErrorName) return { status: 500, type: 'api_error', message: data.slice(0, 500) };
    }
    return undefined;
  }
  return undefined;
}

/**
 * True when the first SSE event in `text` is an error event (see {@link streamErrorOf}). Cheap enough to call on
 * the first chunk of every stream.
 *
 * @example
 * if (isErrorEvent(firstChunkText)) failOver();
 */
export function isErrorEvent(text: string): boolean {
  return streamErrorOf(text) !== undefined;
}
