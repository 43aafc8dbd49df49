#!/usr/bin/env bash
# One training epoch of the reference job: seconds per epoch, samples/s and peak memory, next
# to the Keras figures in ../shared/REFERENCE.md.
#
#   scripts/bench_epoch.sh [EPOCHS] [EXTRA edgeflow train FLAGS...]
#
# EDGEFLOW_NUM_THREADS sets the thread count (default: all cores). With KERAS_PYTHON set to a
# Python that has tensorflow-cpu and pillow, the Keras reference CNN
# (../shared/tools/keras_seed_epoch.py) then trains for the same epochs on the same data, and
# the ratio is taken against that same-sitting figure instead of REFERENCE.md's.
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

keras_json=""
if [[ -n "${KERAS_PYTHON:-}" ]]; then
    keras_json="$out/keras.json"
    "$KERAS_PYTHON" ../shared/tools/keras_seed_epoch.py "$data" 50000 "$epochs" "$keras_json"
fi

python3 - "$out/metrics.json" ../shared/REFERENCE.md "$keras_json" <<'PY'
import json, re, statistics, sys
m = json.load(open(sys.argv[1]))
ref = dict(re.findall(r"^([A-Z0-9_]+)=([0-9.]+)$", open(sys.argv[2]).read(), re.M))
keras_s = float(ref.get("KERAS_SEED_EPOCH_SECONDS", "nan"))
keras_acc = float(ref.get("KERAS_SEED_TEST_ACCURACY", "nan"))
where = "REFERENCE.md"
if sys.argv[3]:
    k = json.load(open(sys.argv[3]))
    keras_s, keras_acc = statistics.median(k["seconds"]), k["test_accuracy"]
    where = "Keras on this machine now"
    print("Keras epochs: " + ", ".join(f"{s:.2f} s" for s in k["seconds"]))
n = m["train_samples"]
print(f"threads {m['threads']}, {n} training samples, {len(m['epochs'])} epoch(s)")
for e in m["epochs"]:
    s = e["seconds"]
    print(f"epoch {e['epoch']}: {s:.2f} s, {n / s:.0f} samples/s, loss {e['loss']:.4f}, "
          f"accuracy {e['accuracy']:.4f}")
med = statistics.median(e["seconds"] for e in m["epochs"])
print(f"median epoch {med:.2f} s; Keras ({where}) {keras_s:.2f} s: ratio edgeflow/Keras "
      f"{med / keras_s:.2f}")
print(f"test accuracy {m['test']['accuracy']:.4f} (Keras after {len(m['epochs']) if sys.argv[3] else 10} "
      f"epochs, {where}: {keras_acc:.4f})")
print(f"peak resident memory {m['peak_rss_mb']:.0f} MiB (Keras: 3.7 GiB)")
PY
