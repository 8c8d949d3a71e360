/** HTTP helpers for the serving tests. */
import { after, before } from 'node:test';
import { rmSync } from 'node:fs';
import { createServer, type PrimerServer, type ServeOptions } from '../../src/serve/server.ts';
export async function postJson(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string; type: string }> {
  const res = await fetch(base + path, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Streams and non-JSON bodies are checked through `text`.
  }
  return { status: res.status, json, text, type: res.headers.get('content-type') ?? '' };
}

/** The completion texts of a server-sent-event stream, per choice index, and its finish reasons. */
export function parseSse(text: string): { texts: string[]; finish: Array<string | null>; done: boolean } {
  const texts: string[] = [];
  const finish: Array<string | null> = [];
  let done = false;
  for (const block of text.split('\n\n')) {
    if (!block.startsWith('data: ')) continue;
    const data = block.slice(6);
    if (data === '[DONE]') { done = true; continue; }
    const chunk = JSON.parse(data) as { choices: Array<{ index: number; text: string; finish_reason: string | null }> };
    for (const c of chunk.choices) {
      texts[c.index] = (texts[c.index] ?? '') + c.text;
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  return { texts, finish, done };
}

/**
 * Starts a server on a free local port before this file's tests and, after them, closes it and removes
 * `root` (the test's model directories). `base` is its URL once started.
 */
export function serveDuringTests(options: ServeOptions, root: string): { readonly base: string } {
  let server: PrimerServer | null = null;
  let base = '';
  before(async () => {
    server = await createServer(options);
    base = await server.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await server?.close();
    rmSync(root, { recursive: true, force: true });
  });
  return { get base() { return base; } };
}
