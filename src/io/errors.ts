/**
 * Typed errors for file formats and I/O. Callers branch on `code` (a stable string) rather than on
 * message text, and `instanceof PrimerError` separates "this input is bad" from programming errors.
 */
export class PrimerError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export type SafetensorsErrorCode =
  | 'TRUNCATED' // file shorter than its 8-byte prefix or its declared header
  | 'CHANGED' // file replaced or modified between reading its header and reading a tensor
  | 'IO' // a tensor's bytes could not be read (I/O error, or too large for memory)
  | 'HEADER_TOO_LARGE' // declared header length above the 100 MB limit
  | 'BAD_JSON' // header is not UTF-8 or not JSON
  | 'BAD_HEADER' // JSON is not an object of well-formed entries / string→string metadata
  | 'BAD_NAME' // tensor name unusable (writer: empty, reserved, duplicate, lone surrogate)
  | 'BAD_DTYPE' // unknown dtype, or a conversion the dtype does not allow
  | 'BAD_SHAPE' // dims not non-negative safe integers, or element count overflows
  | 'BAD_OFFSETS' // data_offsets malformed, reversed or past the end of the data buffer
  | 'OVERLAP' // two tensors share bytes
  | 'INCOMPLETE' // data buffer has holes or trailing bytes not owned by any tensor
  | 'SIZE_MISMATCH' // shape × dtype size ≠ byte length (or writer: data length ≠ shape)
  | 'OUT_OF_RANGE' // integer value does not fit the requested type
  | 'NOT_FOUND'; // no tensor of that name

export class SafetensorsError extends PrimerError {
  declare readonly code: SafetensorsErrorCode;

  constructor(code: SafetensorsErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** "file: message", unless the message already starts with the file (safetensors and config errors name it). */
export function atFile(file: string, message: string): string {
  return message.startsWith(`${file}: `) ? message : `${file}: ${message}`;
}
