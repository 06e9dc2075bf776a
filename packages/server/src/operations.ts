export { type Operation, operationOf } from '@lb/providers';

/** Operations whose request body is JSON (a non-JSON content type is refused with 415). */
export const JSON_OPERATIONS: ReadonlySet<string> = new Set([
  'chat.completions',
  'completions',
  'embeddings',
  'images.generations',
  'audio.speech',
  'moderations',
  'responses',
  'batches',
]);

/** Operations that carry a model and accept the configured default model when the client sent none. */
export const MODEL_OPERATIONS: ReadonlySet<string> = new Set([
  'chat.completions',
  'completions',
  'embeddings',
  'responses',
  'moderations',
  'images.generations',
  'audio.speech',
]);

/** The value of a text field of a multipart/form-data body (`model` of an audio upload), or undefined. */
export function multipartField(body: Buffer, contentType: string, name: string): string | undefined {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!m) return undefined;
  const needle = `name="${name}"`;
  const at = body.indexOf(needle);
  if (at < 0) return undefined;
  const start = body.indexOf('\r\n\r\n', at);
  if (start < 0) return undefined;
  const end = body.indexOf(`\r\n--${m[1] ?? m[2]}`, start + 4);
  if (end < 0 || end - start > 1024) return undefined;
  return body.toString('utf8', start + 4, end);
}
