"""Training throughput of vitlib's ViT against a plain Keras ViT, on whatever device Keras finds.

    python benchmarks/train_throughput.py                 # CPU-sized defaults
    KERAS_BACKEND=jax python benchmarks/train_throughput.py --configs B/16@224:128 --bf16

Each configuration runs in a fresh process (so peak memory is its own): two warm-up steps, then --steps timed
steps; a step's time is the median of the timed ones. --repeats R runs R processes per model, alternating which
model goes first, and the table reports the median run (CPU timings on a shared VM vary). "plain" is a ViT written the way the
keras.io ViT example writes one: tf.image.extract_patches + Dense, an Embedding for positions,
keras.layers.MultiHeadAttention and a Dense MLP per block (TensorFlow backend only). "floor" is no model: the
time the step's matrix products alone take, each timed on its own (TensorFlow only; see matmul_floor), which
bounds how fast any implementation of the same model can train here. Prints one JSON line per run and a
Markdown table. MFU = analytic training FLOPs per image (3 x forward, vitlib.costs) x images/s /
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
    mhz = [float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")]
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    per_cycle = 64 if "avx512f" in flags else 32
    return len(mhz) * (sum(mhz) / len(mhz)) * 1e6 * per_cycle


def matmul_products(cfg, batch):
    """The matrix products of one training step: (count, shape of a, shape of b, transpose_a, transpose_b), as
    TensorFlow's MatMul/BatchMatMul gradients compute them (y = x W; dx = dy Wᵀ; dW = xᵀ dy). Left out: the
    gradient of the input images (never needed) and the classifier head (tiny)."""
    m, d, f = batch * cfg.num_tokens, cfg.hidden_size, cfg.mlp_dim
    patch_in = cfg.patch_size**2 * cfg.channels
    bh, t, hd = batch * cfg.num_heads, cfg.num_tokens, cfg.hidden_size // cfg.num_heads
    products = [(1, (batch * cfg.num_patches, patch_in), (patch_in, d), False, False),  # patch embedding
                (1, (batch * cfg.num_patches, patch_in), (batch * cfg.num_patches, d), True, False)]  # its dW
    for count, k, n in ((4 * cfg.depth, d, d), (cfg.depth, d, f), (cfg.depth, f, d)):  # Q, K, V, out; fc1; fc2
        products += [(count, (m, k), (k, n), False, False), (count, (m, n), (k, n), False, True),
                     (count, (m, k), (m, n), True, False)]
    # attention, per head: S = Q Kᵀ, O = P V; backward dP = dO Vᵀ, dV = Pᵀ dO, dQ = dS K, dK = dSᵀ Q
    products += [(cfg.depth, (bh, t, hd), (bh, t, hd), False, True), (cfg.depth, (bh, t, t), (bh, t, hd), False, False),
                 (cfg.depth, (bh, t, hd), (bh, t, hd), False, True), (cfg.depth, (bh, t, t), (bh, t, hd), True, False),
                 (cfg.depth, (bh, t, t), (bh, t, hd), False, False), (cfg.depth, (bh, t, t), (bh, t, hd), True, False)]
    return products


def matmul_floor(cfg, batch, repeats):
    """Seconds per training step that the model's matrix products alone take (matmul_products), each timed on
    its own with TensorFlow at the shapes and transposes a training step uses, median of ``repeats``. Both
    implementations must compute every one of them, and they are most of the FLOPs, so plain_step / floor
    estimates the most that any implementation of the same model on the same kernels can gain over the plain ViT.
    (An estimate, not a strict bound: inside a step TensorFlow may overlap two products.)"""
    import numpy as np
    import tensorflow as tf

    def seconds_per_call(shape_a, shape_b, ta, tb):
        a, b = tf.random.normal(shape_a), tf.random.normal(shape_b)
        product = tf.function(lambda a, b: tf.matmul(a, b, transpose_a=ta, transpose_b=tb))
        product(a, b)
        seconds = []
        for _ in range(repeats):  # TensorFlow runs a function on the CPU synchronously: it returns when done
            start = time.perf_counter()
            product(a, b)
            seconds.append(time.perf_counter() - start)
        return float(np.median(seconds))

    call_overhead = seconds_per_call((1, 1), (1, 1), False, False)  # Python's share, absent inside a train step
    return sum(count * max(seconds_per_call(*shapes) - call_overhead, 0.0)
               for count, *shapes in matmul_products(cfg, batch))


def run_one(impl, variant, image_size, batch, steps, bf16):
    import keras
    import numpy as np

    import vitlib
    from vitlib import costs

    if bf16:
        keras.config.set_dtype_policy("mixed_bfloat16")
    cfg = vitlib.ViTConfig.from_variant(variant, image_size=image_size, num_classes=10, pool="gap")
    if impl == "floor":
        timed = [matmul_floor(cfg, batch, max(steps, 5))]
    else:
        if impl in ("vitlib", "vitlib-keras"):  # the recipes' setting (the speed layer on), and build_vit's alone
            from vitlib import speed

            model = vitlib.build_vit(variant, image_size=image_size, num_classes=10, pool="gap")
            if impl == "vitlib":
                with speed.switched():
                    model = speed.accelerate(model)  # the hand-written LayerNorm and GELU gradients
        else:
            model = plain_keras_vit(image_size, cfg.patch_size, cfg.hidden_size, cfg.depth, cfg.num_heads,
                                    cfg.mlp_dim, 10)
        timed = fit_and_time(model, image_size, batch, steps)
    seconds = float(np.median(timed))
    images_per_s = batch / seconds
    train_flops = 3 * costs.flops_per_image(cfg)
    return {"impl": impl, "variant": variant, "image_size": image_size, "batch": batch, "steps": steps,
            "backend": keras.backend.backend(), "precision": keras.config.dtype_policy().name,
            "images_per_s": round(images_per_s, 2), "step_ms": round(1000 * seconds, 1),
            "step_ms_min_max": [round(1000 * min(timed), 1), round(1000 * max(timed), 1)],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "train_gflops_per_image": round(train_flops / 1e9, 3), "achieved_tflops": round(train_flops * images_per_s / 1e12, 4)}


def fit_and_time(model, image_size, batch, steps):
    """Seconds of each timed training step of one fit() on random data, after 2 warm-up steps."""
    import keras
    import numpy as np

    model.compile(keras.optimizers.AdamW(1e-4), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    warmup = 2
    x = np.random.default_rng(0).random((batch * (warmup + steps), image_size, image_size, 3), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, batch * (warmup + steps))

    class StepTimer(keras.callbacks.Callback):
        """Each training step's wall time; reading the loss waits for the step to finish (JAX, torch and
        GPUs run steps asynchronously)."""

        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float((logs or {}).get("loss", 0.0))
            self.seconds.append(time.perf_counter() - self.start)

    timer = StepTimer()
    # One fit(): the first steps trace and compile, the rest are timed one by one by the callback. Timing the
    # whole fit() call would add its tear-down: on our 2-core CPU, fit() on NumPy arrays sometimes returned 7-20 s
    # after its last step had ended, with the CPU idle, which made earlier runs of this benchmark bimodal.
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    return timer.seconds[warmup:]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="Ti/4@32:128,S/16@224:16,B/16@224:8",
                        help="comma-separated VARIANT@IMAGE:BATCH")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per process (after 2 warm-up steps)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="fresh processes per model, alternating the implementations; the table gives the median")
    parser.add_argument("--impls", default="vitlib,vitlib-keras,plain,floor",
                        help="vitlib (the speed layer's gradients, as the recipes), vitlib-keras (build_vit alone: Keras' "
                             "LayerNorm and GELU), plain (a keras.io-style ViT), floor (the matrix products alone)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--peak-tflops", type=float, help="device peak for MFU (default: CPU estimate)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        impl, variant, size, batch = args.one.split("|")
        print("RESULT " + json.dumps(run_one(impl, variant, int(size), int(batch), args.steps, args.bf16)))
        return
    peak = args.peak_tflops * 1e12 if args.peak_tflops else cpu_peak_flops()
    impls = [i for i in args.impls.split(",")
             if i not in ("plain", "floor") or os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"]
    table = []
    for spec in args.configs.split(","):
        variant, rest = spec.split("@")
        size, batch = rest.split(":")
        runs = {impl: [] for impl in impls}
        for repeat in range(args.repeats):
            for impl in impls if repeat % 2 == 0 else impls[::-1]:
                cmd = [sys.executable, __file__, "--one", f"{impl}|{variant}|{size}|{batch}", "--steps", str(args.steps)]
                out = subprocess.run(cmd + (["--bf16"] if args.bf16 else []), capture_output=True, text=True)
                line = next((text for text in out.stdout.splitlines() if text.startswith("RESULT ")), None)
                if line is None:
                    print(out.stderr[-2000:], file=sys.stderr)
                    continue
                row = json.loads(line[7:])
                row["mfu_percent"] = round(100 * row["achieved_tflops"] * 1e12 / peak, 2)
                runs[impl].append(row)
                print(json.dumps(row), flush=True)
        for rows in runs.values():
            if rows:
                rows.sort(key=lambda r: r["images_per_s"])
                median = rows[len(rows) // 2]  # a real run (the upper middle one for an even count)
                table.append({**median, "all_images_per_s": [r["images_per_s"] for r in rows]})
    print(f"\npeak assumed: {peak / 1e12:.3f} TFLOP/s\n")
    print("| model | image | batch | impl | images/s (median) | all runs | step (ms) | peak RSS (MiB) | MFU | vitlib / plain |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in table:
        plain = next((p for p in table if p["impl"] == "plain" and p["variant"] == r["variant"]
                      and p["image_size"] == r["image_size"]), None)
        ratio = ""
        if plain and r["impl"] in ("vitlib", "vitlib-keras", "floor"):  # floor: the most any implementation could gain
            ratio = ("at most " if r["impl"] == "floor" else "") + f"{r['images_per_s'] / plain['images_per_s']:.2f}×"
        print(f"| {r['variant']} | {r['image_size']} | {r['batch']} | {r['impl']} | {r['images_per_s']} "
              f"| {', '.join(map(str, r['all_images_per_s']))} | {r['step_ms']} | {r['peak_rss_mib']} "
              f"| {r['mfu_percent']} % | {ratio} |")


if __name__ == "__main__":
    main()
