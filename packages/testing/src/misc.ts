/** A realistic-looking fake key, unique per label (never a real secret). */
export function fakeKey(label: string): string {
  return `sk-proj-${label}-${'x'.repeat(24)}${label.length}N0IA`;
}

/** Records every payload of the named events; returns the list and a disposer. */
export function collectEvents<T extends { on(e: any, fn: (p: any) => void): () => void }>(
  router: T,
  names: string[],
): { events: { name: string; payload: any }[]; stop: () => void } {
  const events: { name: string; payload: any }[] = [];
  const offs = names.map((name) => router.on(name, (payload: any) => events.push({ name, payload })));
  return { events, stop: () => offs.forEach((o) => o()) };
}

/** The text of a streamed chat completion: every chunk's first-choice `delta.content`, joined (an `openai` SDK stream). */
export async function streamedText(
  stream: AsyncIterable<{ choices: { delta?: { content?: string | null } }[] }>,
): Promise<string> {
  let text = '';
  for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
  return text;
}

/**
 * Like {@link streamedText}, with when each piece of content arrived: `at[i]` is ms after the first piece (for tests
 * that tell a stream passed on as it came from one held back and sent at once).
 */
export async function timedText(
  stream: AsyncIterable<{ choices: { delta?: { content?: string | null } }[] }>,
): Promise<{ text: string; at: number[] }> {
  let text = '';
  const at: number[] = [];
  for await (const ch of stream) {
    const piece = ch.choices[0]?.delta?.content;
    if (!piece) continue;
    text += piece;
    at.push(performance.now());
  }
  return { text, at: at.map((t) => t - (at[0] ?? 0)) };
}
