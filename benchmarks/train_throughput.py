"""Training throughput of vitlib's ViT against a plain Keras ViT, on whatever device Keras finds.

    python benchmarks/train_throughput.py                 # CPU-sized defaults
    KERAS_BACKEND=jax python benchmarks/train_throughput.py --configs B/16@224:128 --bf16

Each configuration runs in a fresh process (so peak memory is its own). "plain" is a ViT written the way the
keras.io ViT example writes one: tf.image.extract_patches + Dense, an Embedding for positions,
keras.layers.MultiHeadAttention and a Dense MLP per block (TensorFlow backend only). Prints one JSON line per
run and a Markdown table. MFU = analytic training FLOPs per image (3 x forward, vitlib.costs) x images/s /
the device's peak FLOP/s (given with --peak-tflops, or estimated for CPUs from /proc/cpuinfo).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def plain_keras_vit(image_size, patch_size, hidden, depth, heads, mlp_dim, num_classes):
    import keras
    import tensorflow as tf
    from keras import layers

    class Patches(layers.Layer):
        def __init__(self, size, **kw):
            super().__init__(**kw)
            self.size = size

        def call(self, images):
            p = tf.image.extract_patches(images, [1, self.size, self.size, 1], [1, self.size, self.size, 1],
                                         [1, 1, 1, 1], "VALID")
            return tf.reshape(p, (tf.shape(images)[0], -1, p.shape[-1]))

    class PatchEncoder(layers.Layer):
        def __init__(self, n, dim, **kw):
            super().__init__(**kw)
            self.n, self.proj, self.pos = n, layers.Dense(dim), layers.Embedding(n, dim)

        def call(self, patches):
            return self.proj(patches) + self.pos(tf.range(self.n))

    n = (image_size // patch_size) ** 2
    inputs = keras.Input((image_size, image_size, 3))
    x = PatchEncoder(n, hidden)(Patches(patch_size)(inputs))
    for _ in range(depth):
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        y = layers.MultiHeadAttention(heads, hidden // heads)(y, y)
        x = layers.Add()([y, x])
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        y = layers.Dense(mlp_dim, activation="gelu")(y)
        y = layers.Dense(hidden)(y)
        x = layers.Add()([y, x])
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    x = layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x))


def cpu_peak_flops():
    """fp32 peak of this machine's CPU cores: cores x GHz x 32 FLOP/cycle (two AVX2/AVX-512 FMA ports x 8 lanes
    x 2). An estimate: turbo and AVX-512 change it."""
    mhz = [float(l.split(":")[1]) for l in open("/proc/cpuinfo") if l.startswith("cpu MHz")]
    flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "")
    per_cycle = 64 if "avx512f" in flags else 32
    return len(mhz) * (sum(mhz) / len(mhz)) * 1e6 * per_cycle


def run_one(impl, variant, image_size, batch, steps, bf16):
    import keras
    import numpy as np

    import vitlib
    from vitlib import costs

    if bf16:
        keras.config.set_dtype_policy("mixed_bfloat16")
    cfg = vitlib.ViTConfig.from_variant(variant, image_size=image_size, num_classes=10, pool="gap")
    if impl == "vitlib":
        model = vitlib.build_vit(variant, image_size=image_size, num_classes=10, pool="gap")
    else:
        model = plain_keras_vit(image_size, cfg.patch_size, cfg.hidden_size, cfg.depth, cfg.num_heads, cfg.mlp_dim, 10)
    model.compile(keras.optimizers.AdamW(1e-4), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random((batch * steps, image_size, image_size, 3), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, batch * steps)
    model.fit(x[: batch * 2], y[: batch * 2], batch_size=batch, epochs=1, verbose=0)  # compile / warm up
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    images_per_s = batch * steps / seconds
    train_flops = 3 * costs.flops_per_image(cfg)
    return {"impl": impl, "variant": variant, "image_size": image_size, "batch": batch, "steps": steps,
            "backend": keras.backend.backend(), "precision": keras.config.dtype_policy().name,
            "images_per_s": round(images_per_s, 2), "step_ms": round(1000 * seconds / steps, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "train_gflops_per_image": round(train_flops / 1e9, 3), "achieved_tflops": round(train_flops * images_per_s / 1e12, 4)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="Ti/4@32:128,S/16@224:16,B/16@224:8",
                        help="comma-separated VARIANT@IMAGE:BATCH")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--impls", default="vitlib,plain")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--peak-tflops", type=float, help="device peak for MFU (default: CPU estimate)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        impl, variant, size, batch = args.one.split("|")
        print("RESULT " + json.dumps(run_one(impl, variant, int(size), int(batch), args.steps, args.bf16)))
        return
    peak = args.peak_tflops * 1e12 if args.peak_tflops else cpu_peak_flops()
    rows = []
    for spec in args.configs.split(","):
        variant, rest = spec.split("@")
        size, batch = rest.split(":")
        for impl in args.impls.split(","):
            if impl == "plain" and os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
                continue
            cmd = [sys.executable, __file__, "--one", f"{impl}|{variant}|{size}|{batch}", "--steps", str(args.steps)]
            out = subprocess.run(cmd + (["--bf16"] if args.bf16 else []), capture_output=True, text=True)
            line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                print(out.stderr[-2000:], file=sys.stderr)
                continue
            row = json.loads(line[7:])
            row["mfu_percent"] = round(100 * row["achieved_tflops"] * 1e12 / peak, 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\npeak assumed: {peak / 1e12:.3f} TFLOP/s\n")
    print("| model | image | batch | impl | images/s | step (ms) | peak RSS (MiB) | MFU |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['image_size']} | {r['batch']} | {r['impl']} | {r['images_per_s']} | {r['step_ms']} "
              f"| {r['peak_rss_mib']} | {r['mfu_percent']} % |")


if __name__ == "__main__":
    main()
