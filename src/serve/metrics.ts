/**
 * Prometheus metrics of `primer serve` (prom-client, text format at GET /metrics), named after TGI's:
 * requests by route and status, request duration, queue size, current batch size, tokens generated,
 * time to first token and time per output token. One registry per server, so several servers in one
 * process (tests) keep their own counts.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServeMetrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  duration: Histogram<'route'>;
  tokens: Counter<'model'>;
  promptTokens: Counter<'model'>;
  ttft: Histogram<'model'>;
  perToken: Histogram<'model'>;
}

/** `sample()` gives the gauges' values at scrape time (queue length, sequences decoding now). */
export function createMetrics(sample: () => { queued: number; batch: number; loading: boolean }): ServeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'primer_' });
  const latency = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
  new Gauge({ name: 'primer_queue_size', help: 'Requests waiting for a free batch slot', registers: [registry], collect() { this.set(sample().queued); } });
  new Gauge({ name: 'primer_batch_current_size', help: 'Sequences in the running decode batches', registers: [registry], collect() { this.set(sample().batch); } });
  new Gauge({ name: 'primer_models_loading', help: '1 while the served models are still loading', registers: [registry], collect() { this.set(sample().loading ? 1 : 0); } });
  return {
    registry,
    requests: new Counter({ name: 'primer_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers: [registry] }),
    duration: new Histogram({ name: 'primer_request_duration_seconds', help: 'HTTP request duration', labelNames: ['route'], buckets: latency, registers: [registry] }),
    tokens: new Counter({ name: 'primer_tokens_generated_total', help: 'Completion tokens generated', labelNames: ['model'], registers: [registry] }),
    promptTokens: new Counter({ name: 'primer_prompt_tokens_total', help: 'Prompt tokens processed', labelNames: ['model'], registers: [registry] }),
    ttft: new Histogram({ name: 'primer_time_to_first_token_seconds', help: 'Time from request to its first generated text', labelNames: ['model'], buckets: latency, registers: [registry] }),
    perToken: new Histogram({ name: 'primer_time_per_output_token_seconds', help: 'Mean time between output tokens of a request', labelNames: ['model'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [registry] }),
  };
}
