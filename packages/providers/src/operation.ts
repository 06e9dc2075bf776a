import type { Operation } from './types.js';

/**
 * The operation an OpenAI-style call performs, from its method and path (relative to the base URL; a leading
 * `/v1` and the query are ignored). Unknown paths are `'other'`.
 *
 * @example
 * operationOf('POST', '/chat/completions'); // 'chat.completions'
 * operationOf('GET', '/v1/models/gpt-4o');  // 'models.retrieve'
 */
export function operationOf(method: string, path: string): Operation {
  let end = path.indexOf('?');
  if (end < 0) end = path.length;
  let start = 0;
  if (path.startsWith('/v1/') || (path.startsWith('/v1') && end === 3)) start = 3;
  while (end > start + 1 && path.charCodeAt(end - 1) === 47) end--;
  const p = start === 0 && end === path.length ? path : path.slice(start, end);
  switch (p) {
    case '/chat/completions':
      return 'chat.completions';
    case '/completions':
      return 'completions';
    case '/embeddings':
      return 'embeddings';
    case '/models':
      return method.toUpperCase() === 'GET' ? 'models.list' : 'other';
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
    case '/responses':
      return 'responses';
    case '/files':
      return 'files';
    case '/batches':
      return 'batches';
  }
  if (p.startsWith('/models/')) return 'models.retrieve';
  if (p.startsWith('/responses/')) return 'responses';
  if (p.startsWith('/files/')) return 'files';
  if (p.startsWith('/batches/')) return 'batches';
  return 'other';
}
