#!/usr/bin/python3
"""Runs ../shared/bench/ref_bert.py's own main() (imported, not re-implemented) with two additions that
`npm run bench:bert` needs for its multi-seed judgement:

  --eval_every K   held-out evaluation with ref_bert.py's own evaluate() after every K optimizer steps
                   (ref_bert.py itself only evaluates at the end), printed as `eval STEP: {json}`;
  --schedule S     learning-rate shape after the linear warmup: linear (ref_bert.py's, to 0 at --iters),
                   cosine (to 0) or constant; the formulas are Primer's learningRate() with minLr = 0.

Both are patched in without touching the training computation: evaluate() draws its batches from its
own generator (seed + 10 000) and runs under no_grad with dropout 0, so the weights, the batch stream
and the global RNG are those of a plain ref_bert.py run. The evaluation time counts inside that step's
timing in ref_bert.py; the last line (`{"wrapper": ...}`) reports it so the caller can take it out.

Usage: /usr/bin/python3 bench/ref_bert_recipe.py REF_BERT_PY [--eval_every K] [--schedule S] -- REF_BERT_ARGS...
"""
import importlib.util
import json
import math
import sys
import time

if len(sys.argv) < 2 or "--" not in sys.argv:
    sys.exit("usage: ref_bert_recipe.py REF_BERT_PY [--eval_every K] [--schedule linear|cosine|constant] -- REF_BERT_ARGS...")
split = sys.argv.index("--")
own, passed = sys.argv[1:split], sys.argv[split + 1:]
ref_path, eval_every, schedule = own[0], 0, "linear"
i = 1
while i < len(own):
    if own[i] == "--eval_every" and i + 1 < len(own):
        eval_every = int(own[i + 1])
    elif own[i] == "--schedule" and i + 1 < len(own) and own[i + 1] in ("linear", "cosine", "constant"):
        schedule = own[i + 1]
    else:
        sys.exit(f"ref_bert_recipe.py: unknown or incomplete option {own[i]!r} (expected --eval_every K, --schedule linear|cosine|constant)")
    i += 2

sys.argv = ["ref_bert.py"] + passed
spec = importlib.util.spec_from_file_location("ref_bert", ref_path)
rb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rb)  # parses sys.argv; main() only runs as a script

state = {"model": None, "held": None, "vocab": None, "eval_seconds": 0.0, "curve": []}
original_load, original_model, original_lr = rb.load_corpus, rb.BertMLM, rb.lr_at


def load_corpus(path):
    ids, vocab = original_load(path)
    state["held"], state["vocab"] = ids[int(0.9 * len(ids)):], vocab  # main()'s split
    return ids, vocab


class BertMLM(original_model):
    """ref_bert.py's model, remembered so the schedule hook below can evaluate it (no new parameters)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        state["model"] = self


def scheduled_lr(it, a):
    if schedule == "linear" or it < a.warmup_iters:
        return original_lr(it, a)
    if schedule == "constant":
        return a.lr
    ratio = min(1.0, (it - a.warmup_iters) / max(1, a.iters - a.warmup_iters))
    return a.lr * 0.5 * (1 + math.cos(math.pi * ratio))


def lr_at(it, a):
    # main() calls lr_at(it) once at the top of iteration it, i.e. after `it` optimizer steps.
    if eval_every and it > 0 and it % eval_every == 0:
        t0 = time.perf_counter()
        ev = rb.evaluate(state["model"], state["held"], state["vocab"], a)
        state["eval_seconds"] += time.perf_counter() - t0
        row = {"step": it, "heldout_mlm_loss": round(ev["mlm_loss"], 4), "heldout_mlm_acc": round(ev["mlm_acc"], 4)}
        if "nsp_acc" in ev:
            row["heldout_nsp_acc"] = round(ev["nsp_acc"], 4)
        state["curve"].append(row)
        print(f"eval {it}: {json.dumps(row)}", flush=True)
    return scheduled_lr(it, a)


rb.load_corpus, rb.BertMLM, rb.lr_at = load_corpus, BertMLM, lr_at
rb.main()
print(json.dumps({"wrapper": "ref_bert_recipe", "schedule": schedule, "eval_every": eval_every,
                  "eval_seconds": round(state["eval_seconds"], 3)}), flush=True)
