#!/usr/bin/env python3
"""Markdown tables from the summary.json files of Serket runs: python3 table.py RUN_DIR..."""
import json, sys

def fmt(s):
    return f"{s['greedy']:.4f} | {s['hungarian']:.4f} | {s['nmi']:.4f} | {s['ari']:.4f} | {s['used_classes']}"

print("| run | seed | preset | round | module | greedy acc | Hungarian acc | NMI | ARI | classes used | module s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
walls = []
for d in sys.argv[1:]:
    s = json.load(open(f"{d}/summary.json"))
    name, seed, preset = s["pipeline"], s["seed"], s["vae"]["preset"].lower()
    for r in range(s["rounds"]):
        g = s["gmm_history"][r]
        print(f"| {name} | {seed} | {preset} | {r} | GMM | {fmt(g['scores'])} | {g['seconds']:.1f} |")
        if s["mlda_history"]:
            m = s["mlda_history"][r]
            print(f"| {name} | {seed} | {preset} | {r} | MLDA | {fmt(m['scores'])} | {m['seconds']:.1f} |")
    vae_s = sum(v["seconds"] for v in s["vae_history"])
    walls.append((name, seed, preset, s["wall_seconds"], vae_s,
                  [round(v["final_loss"], 2) for v in s["vae_history"]]))
print()
print("| run | seed | preset | wall s (pipeline) | of which VAE s | VAE loss per round (nats/image) |")
print("|---|---|---|---|---|---|")
for name, seed, preset, w, v, losses in walls:
    print(f"| {name} | {seed} | {preset} | {w:.0f} | {v:.0f} | {losses} |")

# Final round (round rounds-1) per seed, and the mean over seeds.
import statistics as st
rows = {}
for d in sys.argv[1:]:
    s = json.load(open(f"{d}/summary.json"))
    key = (s["pipeline"], s["vae"]["preset"].lower())
    mods = [("GMM", s["gmm_history"][-1]["scores"])]
    if s["mlda_history"]:
        mods.append(("MLDA", s["mlda_history"][-1]["scores"]))
    for mod, sc in mods:
        rows.setdefault(key + (mod,), []).append((s["seed"], sc, s["wall_seconds"]))
print()
print("| pipeline | preset | scored module | seeds | greedy acc | Hungarian acc | NMI | wall s |")
print("|---|---|---|---|---|---|---|---|")
for (p, pre, mod), v in rows.items():
    def ms(f):
        xs = [f(x) for x in v]
        return f"{st.mean(xs):.4f} ± {st.stdev(xs):.4f}" if len(xs) > 1 else f"{xs[0]:.4f}"
    seeds = ",".join(str(x[0]) for x in v)
    wall = st.mean(x[2] for x in v)
    print(f"| {p} | {pre} | {mod} | {seeds} | {ms(lambda x: x[1]['greedy'])} | "
          f"{ms(lambda x: x[1]['hungarian'])} | {ms(lambda x: x[1]['nmi'])} | {wall:.0f} |")
