/**
 * A model's weight fingerprint: which base a LoRA adapter was trained on, which parent a continued
 * pre-training run started from (both stored with their outputs and checked on load).
 */
import { createHash } from 'node:crypto';
import type { Module } from './module.ts';

/** SHA-256 over names, shapes and fp32 bytes of every parameter (but `skip`ped ones): identifies a base model's weights. */
export function modelFingerprint(model: Module, skip: (name: string) => boolean = () => false): string {
  const h = createHash('sha256');
  for (const [name, p] of model.namedParameters()) {
    if (skip(name)) continue;
    h.update(`${name}:${p.shape.join('x')};`);
    const data = p.data instanceof Float32Array ? p.data : new Float32Array(p.data);
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return h.digest('hex');
}
