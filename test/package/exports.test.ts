// What a consumer of the public index can name: the error classes its functions throw (to branch
// with instanceof or on `code`) and the option and result types its exported functions take and return.
// Type exports vanish at run time, so they are checked with the TypeScript compiler against src/index.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import * as primer from '../../src/index.ts';

test('the error classes thrown for bad input are exported and are PrimerErrors with a code', () => {
  for (const name of ['FileWriteError', 'ShardError', 'TokenizerFormatError', 'ChatTemplateError']) assert.equal(typeof (primer as Record<string, unknown>)[name], 'function', `${name} is not exported`);
  const tokenizerError = new primer.TokenizerFormatError('tokenizer.json: model missing');
  assert.ok(tokenizerError instanceof primer.PrimerError);
  assert.equal(tokenizerError.code, 'TOKENIZER_FORMAT');
  assert.equal(tokenizerError.name, 'TokenizerFormatError');
  const templateError = new primer.ChatTemplateError('unclosed tag');
  assert.ok(templateError instanceof primer.PrimerError);
  assert.equal(templateError.code, 'CHAT_TEMPLATE');
  assert.equal(templateError.message, 'chat template: unclosed tag');
  // A real failure: a broken tokenizer.json is reported with the exported class, catchable as a PrimerError.
  const dir = mkdtempSync(join(tmpdir(), 'primer-exports-'));
  try {
    writeFileSync(join(dir, 'tokenizer.json'), '[]');
    assert.throws(() => primer.loadTokenizer(dir), (e: unknown) => e instanceof primer.TokenizerFormatError && e instanceof primer.PrimerError && e.code === 'TOKENIZER_FORMAT');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the option, result and error-code types that exported functions use are exported', () => {
  const wanted = [
    'TrainTokenizerOptions', 'FreezeOptions', 'RunSettings', 'StopSignal', 'BertMetrics', 'FinishReason', 'Span', 'EvalOptions', 'QAEvalOptions',
    'TaskExamples', 'ColumnOptions', 'TokenFileOptions', 'SplitOptions', 'Splits', 'BuiltinTaskOptions', 'TokenClassificationReport', 'ClassScores',
    'BuildIndexOptions', 'LoadedIndex', 'IndexInfo', 'IndexedDocument', 'FewShotResult', 'PromptTemplate', 'ExportHfOptions', 'ExportDtype',
    'SecurityOptions', 'ModelInfo', 'SafetensorsErrorCode', 'InteropErrorCode', 'SafetensorsFile', 'AtomicWriteOptions', 'TruncationStrategy',
    'Side', 'ProgressInfo', 'TensorCheck', 'Role', 'RenderContext', 'ModelInputs', 'ClassifierOutput', 'QAOutput', 'TokenizeCorpusOptions',
    'SaveCheckpointOptions', 'LoraOptions', 'GPTForwardOptions', 'SerializeOptions', 'TensorsToWrite', 'SafetensorsDtype',
  ];
  const index = join(import.meta.dirname, '..', '..', 'src', 'index.ts');
  const program = ts.createProgram([index], {
    allowImportingTsExtensions: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022, strict: true, noResolve: false, skipLibCheck: true, types: [],
  });
  const checker = program.getTypeChecker();
  const exported = new Set(checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(index)!)!).map((s) => s.name));
  assert.deepEqual(wanted.filter((n) => !exported.has(n)), []);
});
