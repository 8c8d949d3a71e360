#!/usr/bin/python3
"""PyTorch baseline for `npm run bench:generate`: GPT-2 with the same dims as a Primer preset,
random weights, greedy decoding with a preallocated KV cache (what HF's past_key_values does).

Usage: /usr/bin/python3 bench/generate_torch.py --layers 4 --dims 256 --heads 4 --context 256 \
         --vocab 8192 --prompt 16 --new 128 --batch 1 --threads 2
The last line printed is a JSON object: {"tokens_per_s": ..., "seconds": ..., "batch": ...}.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.ln_1 = nn.LayerNorm(c)
        self.c_attn = nn.Linear(c, 3 * c)
        self.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c)
        self.c_fc = nn.Linear(c, 4 * c)
        self.mlp_proj = nn.Linear(4 * c, c)

    def forward(self, x, k_cache, v_cache, start):
        b, t, c = x.shape
        d = c // self.h
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (y.view(b, t, self.h, d).transpose(1, 2) for y in (q, k, v))
        k_cache[:, :, start:start + t] = k
        v_cache[:, :, start:start + t] = v
        keys, values = k_cache[:, :, :start + t], v_cache[:, :, :start + t]
        s = (q @ keys.transpose(-2, -1)) / math.sqrt(d)
        if t > 1:  # causal mask aligned to the end (only the prefill needs it)
            mask = torch.ones(t, start + t, dtype=torch.bool).tril(diagonal=start)
            s = s.masked_fill(~mask, float("-inf"))
        y = (F.softmax(s, dim=-1) @ values).transpose(1, 2).reshape(b, t, c)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, context, c, layers, heads):
        super().__init__()
        self.wte = nn.Embedding(vocab, c)
        self.wpe = nn.Embedding(context, c)
        self.h = nn.ModuleList(Block(c, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(c)
        for p in self.parameters():
            nn.init.normal_(p, std=0.02)

    def forward(self, ids, caches, start):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(start, start + t))
        for block, (kc, vc) in zip(self.h, caches):
            x = block(x, kc, vc, start)
        return self.ln_f(x[:, -1]) @ self.wte.weight.T


def main():
    p = argparse.ArgumentParser()
    for name, default in [("layers", 4), ("dims", 256), ("heads", 4), ("context", 256), ("vocab", 8192),
                          ("prompt", 16), ("new", 128), ("batch", 1), ("threads", 2), ("repeats", 2)]:
        p.add_argument(f"--{name}", type=int, default=default)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT(a.vocab, a.context, a.dims, a.layers, a.heads).eval()
    d = a.dims // a.heads
    ids = torch.randint(0, a.vocab, (a.batch, a.prompt))

    def run(new):
        caches = [(torch.empty(a.batch, a.heads, a.context, d), torch.empty(a.batch, a.heads, a.context, d)) for _ in range(a.layers)]
        logits = model(ids, caches, 0)
        pos = a.prompt
        for _ in range(new):
            nxt = logits.argmax(-1, keepdim=True)
            logits = model(nxt, caches, pos)
            pos += 1

    best = float("inf")
    with torch.inference_mode():
        run(8)  # warm-up
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            run(a.new)
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"tokens_per_s": a.batch * a.new / best, "seconds": best, "batch": a.batch, "threads": a.threads}))


if __name__ == "__main__":
    main()
