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
