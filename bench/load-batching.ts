/**
 * The batching run of `npm run bench:load`: streaming clients against `primer serve` with one worker
 * (continuous batching, 8 slots), 1 client then 8 concurrent clients, each sending streamed
 * completions back to back for `seconds`. Total tokens/s comes from the server's own counter
 * (primer_tokens_generated_total on /metrics); time to first token and the gaps between streamed
 * pieces are measured by the clients (p50/p99).
 */
export interface ClientStats {
  clients: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  ttftP50: number;
  ttftP99: number;
  perTokenP50: number;
  perTokenP99: number;
  requests: number;
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function tokensGenerated(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith('primer_tokens_generated_total{')).reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** One streamed completion: first-piece latency and the gaps between later pieces, in ms. */
async function streamOnce(base: string, body: string, ttft: number[], gaps: number[]): Promise<void> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body!.getReader();
  let last = 0;
  for (;;) {
    const { done } = await reader.read();
    if (done) break;
    const now = performance.now();
    if (last === 0) ttft.push(now - t0);
    else gaps.push(now - last);
    last = now;
  }
}

export async function runClients(base: string, clients: number, seconds: number, maxTokens: number): Promise<ClientStats> {
  const ttft: number[] = [];
  const gaps: number[] = [];
  let requests = 0;
  const before = await tokensGenerated(base);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; performance.now() < end; i++) {
      const body = JSON.stringify({ prompt: `Once upon a time ${c} ${i}`, max_tokens: maxTokens, temperature: 0.8, seed: c * 1000 + i, stream: true });
      await streamOnce(base, body, ttft, gaps);
      requests++;
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const tokens = (await tokensGenerated(base)) - before;
  return {
    clients, tokens, seconds: wall, tokensPerSecond: tokens / wall, requests,
    ttftP50: quantile(ttft, 0.5), ttftP99: quantile(ttft, 0.99), perTokenP50: quantile(gaps, 0.5), perTokenP99: quantile(gaps, 0.99),
  };
}

export function batchingTable(rows: ClientStats[]): string {
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  return [
    '| streaming clients | requests | tokens | tokens/s | vs 1 client | TTFT p50 ms | TTFT p99 ms | per-token p50 ms | per-token p99 ms |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.clients} | ${r.requests} | ${r.tokens} | ${f(r.tokensPerSecond)} | ${f(r.tokensPerSecond / rows[0]!.tokensPerSecond, 2)}× | ${f(r.ttftP50)} | ${f(r.ttftP99)} | ${f(r.perTokenP50)} | ${f(r.perTokenP99)} |`),
  ].join('\n');
}
