// Placeholder until the kernels work lands.
const todo = (name: string) => (..._args: unknown[]): never => { throw new Error(`reference ${name}: not implemented yet`); };
export const sumRows = todo('sumRows'), add = todo('add'), mul = todo('mul'), axpy = todo('axpy'), scale = todo('scale');
export const sumSquares = todo('sumSquares'), unary = todo('unary'), unaryBackward = todo('unaryBackward'), permute = todo('permute');
export const layerNorm = todo('layerNorm'), layerNormBackward = todo('layerNormBackward'), softmax = todo('softmax');
export const softmaxBackward = todo('softmaxBackward'), crossEntropy = todo('crossEntropy'), crossEntropyBackward = todo('crossEntropyBackward');
export const embedding = todo('embedding'), embeddingBackward = todo('embeddingBackward'), dropout = todo('dropout');
export const dropoutBackward = todo('dropoutBackward'), adamw = todo('adamw');
