#!/usr/bin/python3
"""Writes ref_bert.py's starting point for `npm run bench:bert`'s same-start run: the initial weights
of its model and the exact batches it trains and evaluates on, built by ref_bert.py's own BertMLM and
MLMBatcher classes (imported from ../shared/bench/ref_bert.py, not re-implemented), in the order its
main() draws them. Primer then trains from the same weights on the same batches, which separates
"same computation" from "same luck" in the plateau escape.

Usage: /usr/bin/python3 bench/ref_bert_start.py REF_BERT_PY CORPUS SEED STEPS OUT_DIR [REF_BERT_ARGS...]
(REF_BERT_ARGS, e.g. --seq_len 64 --batch_size 32 --mask_prob 0.3, are passed on to ref_bert.py's parser
so the batches follow the benchmark's recipe.)
Writes OUT_DIR/manifest.json, weights.bin (float32, state_dict order), train.bin and eval.bin
(int32: per batch input ids, segment ids, labels; each [batch, seq_len]).
"""
import importlib.util
import json
import os
import sys

ref_path, corpus, seed, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sys.argv = ["ref_bert.py", "--corpus", corpus, "--iters", str(steps), "--seed", str(seed), "--threads", "1"] + sys.argv[6:]
spec = importlib.util.spec_from_file_location("ref_bert", ref_path)
rb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rb)  # parses the argv above; main() only runs as a script
import numpy as np  # noqa: E402
import torch  # noqa: E402

a = rb.args
torch.manual_seed(a.seed)  # as main(): seed, corpus, model, then the batchers with their own generators
ids, vocab = rb.load_corpus(a.corpus)
n = int(0.9 * len(ids))
model = rb.BertMLM(vocab, a)
os.makedirs(out, exist_ok=True)
weights, offset = [], 0
with open(os.path.join(out, "weights.bin"), "wb") as f:
    for name, p in model.state_dict().items():
        arr = p.detach().numpy().astype(np.float32)
        f.write(arr.tobytes())
        weights.append({"name": name, "shape": list(arr.shape), "offset": offset})
        offset += arr.size


def dump(batcher, count, path):
    with open(path, "wb") as f:
        for _ in range(count):
            inp, seg, labels, _nsp = batcher.next()
            for t in (inp, seg, labels):
                f.write(t.numpy().astype(np.int32).tobytes())


dump(rb.MLMBatcher(ids[:n], vocab, a, seed=a.seed), steps, os.path.join(out, "train.bin"))
dump(rb.MLMBatcher(ids[n:], vocab, a, seed=a.seed + 10_000), a.eval_batches, os.path.join(out, "eval.bin"))
with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump({"vocab": vocab, "batch": a.batch_size, "seq_len": a.seq_len, "steps": steps,
               "eval_batches": a.eval_batches, "weights": weights}, f)
