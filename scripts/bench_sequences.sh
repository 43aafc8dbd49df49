#!/usr/bin/env bash
# Trains the recurrent and Transformer examples on their official test splits and prints each
# test figure next to the Keras figures in ../shared/REFERENCE.md.
#
#   scripts/bench_sequences.sh [EXAMPLE...]
#
# EXAMPLE is a config name in examples/ without .toml (default: all six). Extra `edgeflow
# train` flags can be passed in EDGEFLOW_TRAIN_FLAGS (for example "--seed 1" or "--epochs 2").
# EDGEFLOW_NUM_THREADS sets the thread count (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."

examples=("$@")
if [ ${#examples[@]} -eq 0 ]; then
    examples=(basicmotions_lstm japanesevowels_gru japanesevowels_transformer spam_lstm
              spam_transformer italypower_forecast)
fi
out="target/bench-sequences"
mkdir -p "$out"

cargo build --release -q -p edgeflow-cli
for name in "${examples[@]}"; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    ./target/release/edgeflow train "examples/$name.toml" --out "$out/$name.efm" \
        --metrics-json "$out/$name.json" --quiet ${EDGEFLOW_TRAIN_FLAGS:-}
    end=$(date +%s.%N)
    python3 - "$name" "$out/$name.json" ../shared/REFERENCE.md "$start" "$end" <<'PY'
import json, re, sys
name, path, ref_path, start, end = sys.argv[1:]
m = json.load(open(path))
ref = dict(re.findall(r"^([A-Z0-9_]+)=([0-9.]+)$", open(ref_path).read(), re.M))
keys = {
    "basicmotions_lstm": "KERAS_BASICMOTIONS_LSTM",
    "japanesevowels_gru": "KERAS_JAPANESEVOWELS_GRU",
    "japanesevowels_transformer": "KERAS_JAPANESEVOWELS_TRANSFORMER",
    "spam_lstm": "KERAS_SPAM_LSTM",
    "spam_transformer": "KERAS_SPAM_TRANSFORMER",
}
t = m["test"]
train_s = sum(e["seconds"] for e in m["epochs"])
seq_s = m["train_samples"] * len(m["epochs"]) / train_s
line = f"{name}: {len(m['epochs'])} epochs, {train_s:.1f} s training ({seq_s:.0f} sequences/s), " \
       f"{float(end) - float(start):.1f} s in all, peak {m['peak_rss_mb']:.0f} MiB; "
if name == "italypower_forecast":
    keras = float(ref["KERAS_ITALYPOWER_LSTM_MAE"])
    line += f"test MAE {t['mae']:.4f} (naive {t['naive_mae']:.4f}; Keras {keras:.4f}, " \
            f"Keras' naive {float(ref['KERAS_ITALYPOWER_NAIVE_MAE']):.4f})"
else:
    key = keys[name]
    line += f"test accuracy {t['accuracy']:.4f} on {t['samples']} " \
            f"(Keras mean {float(ref[key]):.4f}, min {float(ref[key + '_MIN']):.4f})"
    if t.get("f1") is not None:
        line += f", {t['positive_class']} F1 {t['f1']:.4f}"
print(line, flush=True)
PY
done
