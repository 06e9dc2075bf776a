/**
 * Request-path hygiene, before routing. The path a client sends is appended to an endpoint's base URL together with
 * the endpoint's key, so it must never climb out of it: an upstream (or a proxy in front of it) that resolves `..`
 * would otherwise serve `/v1/../__reset` as `/__reset` with our key.
 *
 * What nginx does with its `merge_slashes`/URI normalisation and Envoy with `normalize_path`: dot segments are resolved
 * (`%2e` counts as a dot, RFC 3986 §2.3/§6.2.2.2) and a path whose `..` climbs above its first segment (`/v1`, or the
 * operation's own first segment such as `/chat`) is refused with 400. What they leave to configuration is decided
 * strictly here, since no OpenAI route needs it: an encoded slash or backslash (`%2f`, `%5c`: Envoy's
 * `path_with_escaped_slashes_action` set to reject), a raw backslash, an encoded `%` (`%25`: a double-encoded dot or
 * slash one decoding later), a NUL, and malformed percent-encoding are all refused with 400.
 */

/** A path refused: the reason, for a 400 in OpenAI's shape. */
export class BadPath {
  constructor(readonly message: string) {}
}

/**
 * The request target with its path normalised (the same string when nothing needed it: the common case costs three
 * `indexOf`s), or a {@link BadPath}.
 */
export function normalizeTarget(url: string): string | BadPath {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path.indexOf('%') < 0 && path.indexOf('/.') < 0 && path.indexOf('\\') < 0) return url;
  if (path.indexOf('\\') >= 0) return new BadPath('The request path must not contain a backslash');
  if (path.indexOf('%') >= 0) {
    const bad = /%(?![0-9a-fA-F]{2})|%(?:2[fF]|5[cC]|25|00)/.exec(path);
    if (bad)
      return new BadPath(
        bad[0] === '%'
          ? 'The request path has malformed percent-encoding'
          : `The request path must not contain an encoded ${bad[0].toLowerCase() === '%25' ? 'percent sign' : bad[0].toLowerCase() === '%00' ? 'NUL' : 'slash or backslash'} (${bad[0]})`,
      );
  }
  const segs = path.split('/');
  const out: string[] = [''];
  let changed = false;
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i];
    const dots = s.length <= 6 ? s.replace(/%2e/gi, '.') : s;
    if (dots === '.') {
      changed = true;
      // `/a/.` keeps its trailing slash, as RFC 3986's remove_dot_segments does
      if (i === segs.length - 1) out.push('');
      continue;
    }
    if (dots === '..') {
      changed = true;
      // the first segment (`v1`, `chat`…) is the route's prefix: nothing may climb out of it
      if (out.length <= 2)
        return new BadPath('The request path leaves its prefix (a ".." segment climbs out of it)');
      out.pop();
      if (i === segs.length - 1) out.push('');
      continue;
    }
    out.push(s);
  }
  if (!changed) return url;
  const norm = out.join('/') || '/';
  return q < 0 ? norm : norm + url.slice(q);
}
