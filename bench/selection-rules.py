#!/usr/bin/python3
# Which rule should pick the label-efficiency experiment's method? Reads RUN_DIR/probabilities.json (written by
# `primer experiment label-efficiency`) and, per budget, charges each rule the accuracy it gives up when it picks on one
# random half of the selection set and is scored on the other half (300 halvings): validation data only. Test accuracy
# is printed for information, never used. Usage: /usr/bin/python3 bench/selection-rules.py RUN_DIR (numpy only).
import json, sys, numpy as np
d = json.load(open(sys.argv[1] + '/probabilities.json'))
ysel = np.array(d['selection']); yte = np.array(d['test']); k = len(d['classes'])
runs = {}
for r in d['runs']:
    runs[(r['labels'], r['method'], r['seed'])] = (np.array(r['selection']).reshape(-1, k), np.array(r['test']).reshape(-1, k))
budgets = sorted({b for b, _, _ in runs}); methods = sorted({m for _, m, _ in runs}); seeds = sorted({s for _, _, s in runs})
T = 0.05 * 400 ** (np.arange(49) / 48)
def nll(p, y):
    lp = np.log(np.maximum(p, 1e-12))
    best = np.inf
    for t in T:
        z = lp / t; z = z - z.max(1, keepdims=True)
        l = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))).mean()
        best = min(best, l)
    return best
def acc(p, y): return (p.argmax(1) == y).mean()
def brier(p, y): return ((p - np.eye(k)[y]) ** 2).sum(1).mean()
def brier_t(p, y):
    lp = np.log(np.maximum(p, 1e-12)); best = np.inf
    for t in T:
        z = lp / t; z = np.exp(z - z.max(1, keepdims=True)); z /= z.sum(1, keepdims=True)
        best = min(best, ((z - np.eye(k)[y]) ** 2).sum(1).mean())
    return best
rules = {
  'accuracy': lambda ps, y: np.mean([acc(p, y) for p in ps]),
  'nll': lambda ps, y: -np.mean([nll(p, y) for p in ps]),
  'brier': lambda ps, y: -np.mean([brier(p, y) for p in ps]),
  'brier_T': lambda ps, y: -np.mean([brier_t(p, y) for p in ps]),
}
totals = {name: [] for name in rules}
rng = np.random.default_rng(0)
for b in budgets:
    ms = [m for m in methods if all((b, m, s) in runs for s in seeds)]
    if not ms: continue
    sel = {m: [runs[(b, m, s)][0] for s in seeds] for m in ms}
    te = {m: np.mean([acc(runs[(b, m, s)][1], yte) for s in seeds]) for m in ms}
    line = f'{b:5d} test: ' + ' '.join(f'{m}={100*te[m]:.1f}' for m in ms)
    print(line)
    splits = [rng.permutation(len(ysel)) for _ in range(300)]
    for name, f in rules.items():
        full = max(ms, key=lambda m: f(sel[m], ysel))
        regret = []
        for idx in splits:
            A, B = idx[:len(idx)//2], idx[len(idx)//2:]
            ch = max(ms, key=lambda m: f([p[A] for p in sel[m]], ysel[A]))
            accB = {m: np.mean([acc(p[B], ysel[B]) for p in sel[m]]) for m in ms}
            regret.append(max(accB.values()) - accB[ch])
        totals[name].append(np.mean(regret))
        print(f'      {name:9s} picks {full:9s} (test {100*te[full]:.1f}); split-half regret {100*np.mean(regret):.2f}')
print('mean split-half regret over budgets: ' + ', '.join(f'{n} {100*np.mean(v):.2f}' for n, v in totals.items()))
