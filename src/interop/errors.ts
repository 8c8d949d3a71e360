/**
 * Errors of the Hugging Face importer/exporter. Every bad input (config, weights, tokenizer, index)
 * surfaces as an InteropError whose `code` says which kind of problem it is, so callers and the CLI
 * can branch on it without parsing messages.
 */
import { PrimerError } from '../io/errors.ts';

export type InteropErrorCode =
  | 'NOT_FOUND' // the directory or a file it names does not exist
  | 'BAD_CONFIG' // config.json unreadable or invalid
  | 'UNSUPPORTED_ARCHITECTURE' // architectures[0] / model_type Primer does not implement
  | 'PICKLE_REFUSED' // only pytorch_model.bin (or another pickle/TF/Flax checkpoint) is present
  | 'NO_WEIGHTS' // no model.safetensors and no model.safetensors.index.json
  | 'BAD_INDEX' // model.safetensors.index.json malformed or inconsistent with its shards
  | 'BAD_WEIGHTS' // a safetensors file is corrupt (cause: the SafetensorsError)
  | 'UNSUPPORTED_DTYPE' // a parameter stored in a dtype other than F32/F16/BF16
  | 'MISSING_TENSORS'
  | 'UNEXPECTED_TENSORS'
  | 'SHAPE_MISMATCH'
  | 'TIED_MISMATCH' // a tied copy (lm_head, decoder) differs from the tensor it must equal
  | 'BAD_TOKENIZER' // tokenizer files unreadable or invalid
  | 'BAD_OUTPUT'; // the output path exists and is not a directory

export class InteropError extends PrimerError {
  declare readonly code: InteropErrorCode;

  constructor(code: InteropErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
