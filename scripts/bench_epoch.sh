#!/usr/bin/env bash
# One training epoch of the reference job: seconds per epoch, samples/s and peak memory, next
# to the Keras figures in ../shared/REFERENCE.md.
#
#   scripts/bench_epoch.sh [EPOCHS] [EXTRA edgeflow train FLAGS...]
#
# EDGEFLOW_NUM_THREADS sets the thread count (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."

epochs="${1:-1}"
shift || true
data=../shared/datasets/cifar10-jpg
out="target/bench-epoch"
mkdir -p "$out"

cargo build --release -q -p edgeflow-cli
# Warm the decoded-image cache so the timed run measures training, not JPEG decoding.
./target/release/edgeflow train examples/cifar10_cnn.toml --data "$data" --epochs 1 \
    --limit-train 32 --limit-test 32 --out "$out/warm.efm" --quiet

./target/release/edgeflow train examples/cifar10_cnn.toml --data "$data" --epochs "$epochs" \
    --out "$out/model.efm" --metrics-json "$out/metrics.json" --quiet "$@"

python3 - "$out/metrics.json" ../shared/REFERENCE.md <<'PY'
import json, re, sys
m = json.load(open(sys.argv[1]))
ref = dict(re.findall(r"^([A-Z0-9_]+)=([0-9.]+)$", open(sys.argv[2]).read(), re.M))
keras_s = float(ref.get("KERAS_SEED_EPOCH_SECONDS", "nan"))
keras_acc = float(ref.get("KERAS_SEED_TEST_ACCURACY", "nan"))
n = m["train_samples"]
print(f"threads {m['threads']}, {n} training samples, {len(m['epochs'])} epoch(s)")
for e in m["epochs"]:
    s = e["seconds"]
    print(f"epoch {e['epoch']}: {s:.2f} s, {n / s:.0f} samples/s, loss {e['loss']:.4f}, "
          f"accuracy {e['accuracy']:.4f}; Keras reference {keras_s:.0f} s/epoch "
          f"(ratio edgeflow/Keras {s / keras_s:.2f})")
print(f"test accuracy {m['test']['accuracy']:.4f} (Keras after 10 epochs: {keras_acc:.4f})")
print(f"peak resident memory {m['peak_rss_mb']:.0f} MiB (Keras: 3.7 GiB)")
PY
