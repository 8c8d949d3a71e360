// Placeholder until the attention work lands.
export function attention(..._args: unknown[]): void { throw new Error('reference attention: not implemented yet'); }
export function attentionBackward(..._args: unknown[]): void { throw new Error('reference attentionBackward: not implemented yet'); }
