/** Operation names as `@lb/providers` uses them. */
export type Operation =
  | 'chat.completions'
  | 'completions'
  | 'embeddings'
  | 'models.list'
  | 'models.retrieve'
  | 'images.generations'
  | 'images.edits'
  | 'images.variations'
  | 'audio.speech'
  | 'audio.transcriptions'
  | 'audio.translations'
  | 'moderations'
  | 'responses'
  | 'files'
  | 'batches'
  | 'other';

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

/** The operation of an OpenAI path (after `/v1`, query allowed). */
export function operationOf(method: string, path: string): Operation {
  const q = path.indexOf('?');
  const p = q >= 0 ? path.slice(0, q) : path;
  switch (p) {
    case '/chat/completions':
      return 'chat.completions';
    case '/completions':
      return 'completions';
    case '/embeddings':
      return 'embeddings';
    case '/models':
      return 'models.list';
    case '/images/generations':
      return 'images.generations';
    case '/images/edits':
      return 'images.edits';
    case '/images/variations':
      return 'images.variations';
    case '/audio/speech':
      return 'audio.speech';
    case '/audio/transcriptions':
      return 'audio.transcriptions';
    case '/audio/translations':
      return 'audio.translations';
    case '/moderations':
      return 'moderations';
  }
  if (p.startsWith('/models/')) return 'models.retrieve';
  if (p === '/responses' || p.startsWith('/responses/')) return 'responses';
  if (p === '/files' || p.startsWith('/files/')) return 'files';
  if (p === '/batches' || p.startsWith('/batches/')) return 'batches';
  void method;
  return 'other';
}

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
