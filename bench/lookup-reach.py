#!/usr/bin/env python3
r"""What prompt-lookup drafting can reach on a model's own greedy text, on paper: replays lookup
drafting policies over token sequences and prices each verification pass with a measured cost
curve (`tern bench --batch-sweep`: time of a pass of b tokens over one of 1 token).

Sequences: one JSON object per line, {"p": prompt ids, "g": greedy ids}, e.g. from
  while IFS= read -r p; do tern run -m M.tern -p "${p//\\n/$'\n'}" -n 64 --temp 0 --speculate off --json \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"p": d["prompt_tokens"], "g": d["tokens"]}))'
  done < bench/prompts.txt > seqs.jsonl
Usage: bench/lookup-reach.py seqs.jsonl COST   (COST: batch 1..8 over batch 1, comma-separated)

Policies:
- chain: the most recent earlier occurrence of the last n tokens (n = 3, 2, 1) proposes what followed
  it (LookupDrafter), at most `limit` drafts; the limit follows Tern's schedule (Session: +2 after a
  pass that kept every draft, kept + 1 after one that did not), never below `floor`.
- tree: every earlier occurrence's continuation, merged into a trie, the best-supported N nodes verified
  in one pass (as tree-attention verification would; Tern verifies chains only).
A pass with no draft is a plain step (cost 1).
"""
import json
import sys


def matches(hist, maxn=3):
    """(n, continuation) of every earlier occurrence of the last n tokens, longest n first, most recent first."""
    count = len(hist)
    for n in range(min(maxn, count - 1), 0, -1):
        tail = hist[count - n:]
        for i in range(count - n - 1, -1, -1):
            if hist[i:i + n] == tail:
                yield n, hist[i + n:]


def chain(hist, limit):
    for _, cont in matches(hist):
        return cont[:limit]
    return []


def tree(hist, nodes, depth=6):
    support = {}
    for n, cont in matches(hist):
        for k in range(1, min(depth, len(cont)) + 1):
            key = tuple(cont[:k])
            s = support.get(key, (0, 0))
            support[key] = (max(s[0], n), s[1] + 1)
    chosen = set()
    while len(chosen) < nodes:
        free = [k for k in support if k not in chosen and (len(k) == 1 or k[:-1] in chosen)]
        if not free:
            break
        chosen.add(max(free, key=lambda k: (support[k][0], support[k][1], -len(k))))
    return chosen


def replay(seqs, cost, floor=None, nodes=None, top=6):
    passes = tokens = 0
    spent = 0.0
    for prompt, gen in seqs:
        hist, k, limit = list(prompt), 0, 2
        while k < len(gen):
            if nodes is None:
                draft = chain(hist, min(top, max(floor, limit)))
                kept = 0
                while kept < len(draft) and k + kept < len(gen) and draft[kept] == gen[k + kept]:
                    kept += 1
                if draft:
                    limit = min(top, len(draft) + 2) if kept == len(draft) else max(1, kept + 1)
                rows = 1 + len(draft)
            else:
                t = tree(hist, nodes)
                kept = 0
                while k + kept < len(gen) and tuple(gen[k:k + kept + 1]) in t:
                    kept += 1
                rows = 1 + len(t)
            step = min(kept + 1, len(gen) - k)
            hist += gen[k:k + step]
            k += step
            passes += 1
            tokens += step
            spent += cost(rows)
    return tokens / passes, tokens / spent


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        with open(sys.argv[1]) as f:
            seqs = [(d["p"], d["g"]) for d in map(json.loads, f)]
        curve = [float(x) for x in sys.argv[2].split(",")]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"lookup-reach: {e}")
    if not curve or any(c <= 0 for c in curve):
        sys.exit("lookup-reach: COST needs positive costs for batches 1, 2, ...")
    # Beyond the curve, linear in the rows.
    cost = lambda b: curve[b - 1] if b <= len(curve) else curve[-1] * b / len(curve)
    for floor in (1, 2, 3, 4):
        tpp, speed = replay(seqs, cost, floor=floor)
        name = "chain, Tern's schedule" + (f", at least {floor} drafts" if floor > 1 else "")
        print(f"{name:42s} tokens/pass {tpp:.3f}  speedup {speed:.3f}")
    for nodes in (1, 2, 3, 4, 5, 7):
        tpp, speed = replay(seqs, cost, nodes=nodes)
        print(f"{'tree of %d nodes' % nodes:42s} tokens/pass {tpp:.3f}  speedup {speed:.3f}")


if __name__ == "__main__":
    main()
