"""How close the training step and the serving call come to this machine's limit, measured in one run.

    python benchmarks/bench_limit.py [--repeats 5] [--steps 10] [--precision float32,auto]

Tiny config as benchmarks/bench_train.py and benchmarks/bench_step_parts.py (256 x 256 images, batch 4,
K=32, 64 RoIs per image), on one fixed batch of rendered images. Prints:

1. the limit: the convolution and matrix-product rate of this machine on the model's own layer shapes.
   For each ``Conv2D`` of the backbone trunk and of the RPN head, a standalone ``tf.function`` of
   ``tf.nn.conv2d`` (the layer's input shape at this batch and image size, its kernel shape, stride and
   padding; no bias or activation), and for each ``Dense`` of the RoI head and of the LCR head a
   ``tf.matmul`` of ``(batch * rois_per_image, in) x (in, out)``, timed in float32 and in bfloat16
   (inputs and kernel cast beforehand) as the median of ``--repeats`` runs of ``--steps`` calls. Per
   layer: its shape, MFLOP (2 * output elements * kh * kw * cin for a conv, 2 * rows * in * out for a
   matmul) and GFLOP/s in each precision; then the FLOP-weighted peak of each precision, total FLOP /
   total time over the table, the rate a step made of exactly these products would reach. Whether
   bfloat16 is native here is :func:`lcr_tf.training.precision.fast_bfloat16`'s answer (bfloat16 is timed either
   way);
2. the FLOPs of the training step (``model.train_step``: forward, gradient and the optimizer update) and
   of the serving call (``model(images, training=False)``), counted from the graphs of their concrete
   functions (fully static input shapes): by TensorFlow's profiler (``tf.compat.v1.profiler``,
   ``float_operation``: every float op it has a count for, element-wise ones included), and by this
   script's own walk of the graph over the convolutions and matrix products only (2 * the product of
   their static dimensions, per op type). Both leave out the ops that never run: a symbolic gradient
   also builds, e.g., the first conv's gradient with respect to the images, which nothing uses and the
   runtime prunes. A dimension the graph leaves unknown is taken as the configured RoI count (batch *
   rois_per_image in training, batch * rpn_post_nms_top_n_test in serving) and the line says so; the
   profiler cannot count such ops, and the figure used then is the profiler's plus the own count of them;
3. the time of those same calls (median of ``--repeats`` runs of ``--steps`` calls after 5 untimed ones,
   in each policy of ``--precision``; ``auto`` is :func:`lcr_tf.training.precision.resolve`'s choice) and the
   achieved GFLOP/s = counted FLOP / time, as a fraction of the step-1 peak of the same compute precision
   (float32 for ``float32``, bfloat16 for ``mixed_bfloat16``). The rest of a step (proposals, NMS, target
   assignment, RoIAlign, element-wise ops) adds time but few FLOPs, so the fraction says how far the call
   is from a run of nothing but its products at the standalone rate. It is a yardstick, not a bound: the
   peak is of forward products, the training step's backward ones (``Conv2DBackpropInput`` /
   ``Conv2DBackpropFilter``) run at their own rate, and inside a graph ops fuse and can overlap.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks.timing import median_time  # noqa: E402
from lcr_tf.contracts import cli  # noqa: E402
from lcr_tf.training import step as training_step

FLAGS = flags.FLAGS
BATCH_SIZE = 4
IMAGE_SIZE = 256
PRECISIONS = ("float32", "mixed_bfloat16", "auto")
# Untimed calls before timing anything: the first call of a function traces it, and the next few are still
# slower than the rest (measured: calls 2-3 of a standalone conv ran 1.3-2x the steady time).
WARMUP_CALLS = 5
# The dtype whose step-1 peak a Keras policy's compute is compared with.
COMPUTE_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16"}

# Ops whose FLOPs the own count computes: convolutions (kernel from input 1, or from the output for the
# filter gradient) and matrix products (contraction side from input 0 and the transpose attribute).
CONV_OPS = ("Conv2D", "Conv2DBackpropInput", "_FusedConv2D", "_MklFusedConv2D", "_MklNativeFusedConv2D",
            "_MklConv2D", "_MklNativeConv2D")
CONV_FILTER_GRAD_OPS = ("Conv2DBackpropFilter", "_MklConv2DBackpropFilter", "_MklNativeConv2DBackpropFilter")
MATMUL_OPS = {"MatMul": "transpose_a", "_FusedMatMul": "transpose_a", "_MklMatMul": "transpose_a",
              "_MklFusedMatMul": "transpose_a", "BatchMatMul": "adj_x", "BatchMatMulV2": "adj_x",
              "BatchMatMulV3": "adj_x"}
COUNTED_OPS = CONV_OPS + CONV_FILTER_GRAD_OPS + tuple(MATMUL_OPS)


class Product(NamedTuple):
    """One layer's product as step 1 times it."""

    name: str
    kind: str  # "conv" or "matmul"
    input_shape: Tuple[int, ...]  # conv: (B, H, W, Cin); matmul: (rows, in)
    kernel_shape: Tuple[int, ...]  # conv: (kh, kw, Cin, Cout); matmul: (in, out)
    strides: Tuple[int, int] = (1, 1)
    padding: str = "SAME"

    @property
    def output_elements(self) -> int:
        if self.kind == "matmul":
            return self.input_shape[0] * self.kernel_shape[1]
        b, h, w, _ = self.input_shape
        kh, kw, _, cout = self.kernel_shape
        if self.padding == "SAME":
            oh, ow = -(-h // self.strides[0]), -(-w // self.strides[1])
        else:
            oh, ow = (h - kh) // self.strides[0] + 1, (w - kw) // self.strides[1] + 1
        return b * oh * ow * cout

    @property
    def flops(self) -> int:
        if self.kind == "matmul":
            return 2 * self.output_elements * self.kernel_shape[0]
        kh, kw, cin, _ = self.kernel_shape
        return 2 * self.output_elements * kh * kw * cin

    def describe(self) -> str:
        if self.kind == "matmul":
            return f"({self.input_shape[0]}x{self.input_shape[1]}) @ ({self.kernel_shape[0]}x{self.kernel_shape[1]})"
        b, h, w, cin = self.input_shape
        kh, kw, _, cout = self.kernel_shape
        stride = f" /{self.strides[0]}" if self.strides != (1, 1) else ""
        return f"{b}x{h}x{w}x{cin} * {kh}x{kw}x{cin}x{cout}{stride}"


class GraphCount(NamedTuple):
    """FLOPs of a graph's convolutions and matrix products by the own count (ops that run only)."""

    flops: int  # every counted op that runs
    by_type: Dict[str, int]
    substituted_flops: int  # of the ops with an unknown dimension (taken as the RoI count)
    substituted_ops: int
    dead_flops: int  # of the product ops that never run (left out of ``flops``)
    dead_ops: int
    uncounted: List[str]  # counted op types whose shapes were not even of known rank
    in_functions: int  # counted op types inside the graph's function library (control flow), not counted


def live_ops(graph: tf.Graph) -> set:
    """Names of the ops of a function graph that run: those its outputs and its control outputs (the
    stateful ops, variable updates included) depend on. Symbolic gradients add ops that nothing uses (the
    gradient of a conv with respect to the images, say), which the runtime prunes."""
    roots = [t.op for t in getattr(graph, "outputs", [])] + list(getattr(graph, "control_outputs", []))
    if not roots:
        return {op.name for op in graph.get_operations()}
    seen, stack = set(), roots
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def _dims(shape: tf.TensorShape, unknown: int) -> Optional[Tuple[List[int], bool]]:
    """(dimensions with None replaced by ``unknown``, whether one was) or None for an unknown rank."""
    if shape.rank is None:
        return None
    dims = shape.as_list()
    return [unknown if d is None else d for d in dims], any(d is None for d in dims)


def op_flops(op, unknown: int) -> Optional[Tuple[int, bool]]:
    """(2 * the product of an op's dimensions, whether an unknown dimension was taken as ``unknown``) for a
    convolution or matrix product of :data:`COUNTED_OPS`; None for another op or an unknown rank."""
    if op.type not in COUNTED_OPS:
        return None
    out = _dims(op.outputs[0].shape, unknown)
    if op.type in CONV_FILTER_GRAD_OPS:
        # Inputs (input, filter_sizes, out_backprop); the output is the filter's gradient.
        grad, kernel = _dims(op.inputs[2].shape, unknown), out
        if grad is None or kernel is None:
            return None
        (kh, kw, cin, _), elements = kernel[0][:4], math.prod(grad[0])
        return 2 * elements * kh * kw * cin, grad[1] or kernel[1]
    if op.type in CONV_OPS:
        # Conv2D (input, filter) -> output; Conv2DBackpropInput (input_sizes, filter, out_backprop) costs a
        # forward conv whose output is out_backprop.
        kernel = _dims(op.inputs[1].shape, unknown)
        grad = _dims(op.inputs[2].shape, unknown) if op.type == "Conv2DBackpropInput" else out
        if grad is None or kernel is None:
            return None
        kh, kw, cin, _ = kernel[0][:4]
        return 2 * math.prod(grad[0]) * kh * kw * cin, grad[1] or kernel[1]
    a = _dims(op.inputs[0].shape, unknown)
    if a is None or out is None:
        return None
    try:
        transposed = bool(op.get_attr(MATMUL_OPS[op.type]))
    except ValueError:
        transposed = False
    inner = a[0][-2] if transposed else a[0][-1]
    return 2 * math.prod(out[0]) * inner, a[1] or out[1]


def count_graph(graph: tf.Graph, unknown: int) -> GraphCount:
    """The own count of ``graph`` (:func:`op_flops` of every op that runs; ``unknown`` for unknown
    dimensions)."""
    live = live_ops(graph)
    total = substituted = substituted_ops = dead = dead_ops = 0
    by_type: Dict[str, int] = {}
    uncounted = []
    for op in graph.get_operations():
        if op.type not in COUNTED_OPS:
            continue
        counted = op_flops(op, unknown)
        if counted is None:
            uncounted.append(op.type)
            continue
        flops, guessed = counted
        if op.name not in live:
            dead += flops
            dead_ops += 1
            continue
        total += flops
        by_type[op.type] = by_type.get(op.type, 0) + flops
        if guessed:
            substituted += flops
            substituted_ops += 1
    library = graph.as_graph_def().library
    in_functions = sum(node.op in COUNTED_OPS for f in library.function for node in f.node_def)
    return GraphCount(total, by_type, substituted, substituted_ops, dead, dead_ops, uncounted, in_functions)


def profiler_flops(graph: tf.Graph) -> Optional[int]:
    """Total float ops of ``graph`` by ``tf.compat.v1.profiler`` (None when it fails)."""
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    try:
        return int(tf.compat.v1.profiler.profile(graph, options=options).total_float_ops)
    except Exception as e:  # a profiler failure only loses the cross-check
        print(f"  (the profiler failed: {type(e).__name__}: {e})")
        return None


def registered_flops(graph: tf.Graph, names: set) -> int:
    """FLOPs of the ops ``names`` by the per-op statistics the profiler sums (0 for an op without)."""
    from tensorflow.python.framework import ops as ops_lib

    total = 0
    for op in graph.get_operations():
        if op.name in names:
            try:
                total += int(ops_lib.get_stats_for_node_def(graph, op.node_def, "flops").value or 0)
            except (ValueError, TypeError):
                pass
    return total


def counted_flops(graph: tf.Graph, unknown: int, unknown_note: str) -> Tuple[int, str, List[str]]:
    """(FLOPs of ``graph``, the method that gave them, lines of detail showing both counts)."""
    own = count_graph(graph, unknown)
    prof = profiler_flops(graph)
    parts = ", ".join(f"{t} {v / 1e9:.2f}" for t, v in sorted(own.by_type.items(), key=lambda kv: -kv[1]))
    lines = [f"own count (convolutions and matrix products that run): {own.flops / 1e9:.3f} GFLOP ({parts})"]
    if own.dead_ops:
        lines.append(f"{own.dead_ops} product ops of the graph never run (outputs unused, pruned at run time): "
                     f"{own.dead_flops / 1e9:.3f} GFLOP, left out")
    if own.substituted_ops:
        lines.append(f"{own.substituted_ops} product ops have an unknown dimension, taken as {unknown} "
                     f"({unknown_note}): {own.substituted_flops / 1e9:.3f} GFLOP of the own count")
    if own.uncounted:
        lines.append(f"not counted (unknown rank): {', '.join(sorted(set(own.uncounted)))}")
    if own.in_functions:
        lines.append(f"{own.in_functions} product ops inside control-flow functions are in neither count")
    if not prof:
        lines.append("the profiler gave no figure: the own count is used")
        return own.flops, "own graph count", lines
    live = live_ops(graph)
    dead = registered_flops(graph, {op.name for op in graph.get_operations()} - live)
    figure, method = prof - dead, "graph profiler"
    lines.append(f"profiler (every float op it has a count for, element-wise included): {prof / 1e9:.3f} GFLOP"
                 + (f", {figure / 1e9:.3f} less the ops that never run" if dead else "")
                 + f" = {figure / max(own.flops - own.substituted_flops, 1):.3f}x the own count of the ops "
                 f"it can see")
    if dead:
        method += " less never-run ops"
    if own.substituted_ops:
        figure += own.substituted_flops
        method += f" + own count of {own.substituted_ops} RoI-dependent ops"
    return figure, method, lines


def layer_products(model, config, images) -> List[Product]:
    """The convolutions and matrix products of the model's layers at this batch (see the docstring)."""
    import keras

    convs = [layer for layer in model.trunk.layers if isinstance(layer, keras.layers.Conv2D)]
    probe = keras.Model(model.trunk.inputs, [layer.input for layer in convs] + [model.trunk.output])
    shapes = [tuple(int(d) for d in t.shape) for t in probe(model.preprocess(images), training=False)]
    features_shape = shapes.pop()
    products = []

    def conv(layer, input_shape):
        strides = tuple(int(s) for s in layer.strides)
        products.append(Product(layer.name, "conv", input_shape, tuple(int(d) for d in layer.kernel.shape),
                                strides, layer.padding.upper()))

    for layer, shape in zip(convs, shapes):
        conv(layer, shape)
    head = model.rpn_head
    conv(head.conv, features_shape)
    hidden = features_shape[:3] + (head.channels,)
    conv(head.objectness, hidden)
    conv(head.box_deltas, hidden)
    rows = BATCH_SIZE * config.rois_per_image
    dense = [layer for layer in model.roi_head.layers if isinstance(layer, keras.layers.Dense)]
    dense += [model.lcr_head.classifier, model.lcr_head.regressor]
    for layer in dense:
        kernel = tuple(int(d) for d in layer.kernel.shape)
        products.append(Product(layer.name, "matmul", (rows, kernel[0]), kernel))
    return products


def time_product(product: Product, dtype: tf.DType, repeats: int, steps: int) -> float:
    """Median seconds of one forward call of ``product`` in ``dtype``."""
    x = tf.cast(tf.random.normal(product.input_shape), dtype)
    k = tf.cast(tf.random.normal(product.kernel_shape, stddev=0.05), dtype)

    if product.kind == "conv":
        @tf.function
        def run(x, k):
            y = tf.nn.conv2d(x, k, product.strides, product.padding)
            # A scalar of the output to fetch (so that an asynchronous device finishes), not a copy of it.
            return tf.reduce_sum(tf.cast(y[:1, :1, :1, :1], tf.float32))
    else:
        @tf.function
        def run(x, k):
            return tf.reduce_sum(tf.cast(tf.matmul(x, k)[:1, :1], tf.float32))

    for _ in range(WARMUP_CALLS):
        run(x, k)
    run(x, k).numpy()
    return median_time(lambda: [run(x, k) for _ in range(steps)][-1].numpy(), repeats) / steps


def measure_peaks(products: Sequence[Product], repeats: int, steps: int) -> Dict[str, float]:
    """Prints step 1's table; returns dtype name -> FLOP-weighted peak in FLOP/s."""
    times = {name: [time_product(p, tf.as_dtype(name), repeats, steps) for p in products]
             for name in ("float32", "bfloat16")}
    print(f"  {'layer':20s} {'shape':34s} {'MFLOP':>8s} {'f32 GFLOP/s':>12s} {'bf16 GFLOP/s':>13s}")
    for i, p in enumerate(products):
        print(f"  {p.name:20s} {p.describe():34s} {p.flops / 1e6:8.1f} {p.flops / times['float32'][i] / 1e9:12.1f} "
              f"{p.flops / times['bfloat16'][i] / 1e9:13.1f}")
    total = sum(p.flops for p in products)
    peaks = {name: total / sum(t) for name, t in times.items()}
    print(f"  peak (total FLOP / total time, {len(products)} layers, {total / 1e9:.2f} GFLOP): float32 "
          f"{peaks['float32'] / 1e9:.1f} GFLOP/s ({1e3 * sum(times['float32']):.1f} ms), bfloat16 "
          f"{peaks['bfloat16'] / 1e9:.1f} GFLOP/s ({1e3 * sum(times['bfloat16']):.1f} ms), "
          f"bfloat16 / float32 {peaks['bfloat16'] / peaks['float32']:.2f}x")
    return peaks


def define_flags() -> None:
    flags.DEFINE_integer("repeats", 5, "Runs per measurement (median printed).")
    flags.DEFINE_integer("steps", 10, "Calls per run.")
    flags.DEFINE_list("precision", ["float32", "auto"],
                      f"Keras policies of step 3, comma-separated, of {', '.join(PRECISIONS)} (auto: "
                      "lcr_tf.training.precision.resolve's choice; repeats are timed once).")
    flags.register_validator("precision", lambda values: values and all(v in PRECISIONS for v in values),
                             f"--precision takes a comma-separated list of {', '.join(PRECISIONS)}")


def main(argv) -> int:
    import keras

    from benchmarks.bench_train import write_shards
    from lcr_tf.contracts import batch_keys
    from lcr_tf.data import pipeline
    from lcr_tf.modeling import factory, lcr_model
    from lcr_tf.poses import anchors as anchors_lib
    from lcr_tf.poses import body_model
    from lcr_tf.training import precision as precision_lib

    repeats, steps = FLAGS.repeats, FLAGS.steps
    corpus = body_model.sample_poses(2000, seed=0).poses3d
    anchor_set = anchors_lib.cluster_poses(corpus, 32, 8, seed=0)
    config = factory.ModelConfig(num_anchors=32, image_size=IMAGE_SIZE, rpn_channels=128,
                                 rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=128,
                                 rpn_post_nms_top_n_test=64, rois_per_image=64, weight_decay=1e-4, seed=0)
    with tempfile.TemporaryDirectory() as root:
        shard = write_shards(root, 8, IMAGE_SIZE, anchor_set, corpus)
        ds = pipeline.make_dataset(shard, pipeline.InputConfig(image_size=IMAGE_SIZE, max_people=6,
                                                               batch_size=BATCH_SIZE, num_epochs=None),
                                   training=True, anchors=anchor_set, seed=0)
        batch = {k: v for k, v in next(iter(ds)).items() if k in training_step.BATCH_KEYS}
    images = tf.cast(batch[batch_keys.IMAGE], tf.float32)
    native, native_why = precision_lib.fast_bfloat16()
    policies = list(dict.fromkeys(precision_lib.resolve(p)[0] for p in FLAGS.precision))
    auto, auto_why = precision_lib.resolve("auto")
    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU, {os.cpu_count()} threads"
    print(f"tiny config, {IMAGE_SIZE}x{IMAGE_SIZE}, batch {BATCH_SIZE}, K=32, {config.rois_per_image} RoIs "
          f"per image ({device}); bfloat16 {'native' if native else 'NOT native (emulated)'}: {native_why}; "
          f"auto precision: {auto} ({auto_why}); medians of {repeats} runs of {steps} calls")

    def build(policy):
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        model = training_step.build_model(config, anchor_set)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=False)
        model(images, training=False)
        model.optimizer.build(model.trainable_variables)
        return model

    print("1. the limit: forward products of the model's layers, standalone")
    float32_model = build("float32")
    peaks = measure_peaks(layer_products(float32_model, config, images), repeats, steps)

    print("2-3. the training step and the serving call: FLOPs counted from their graphs, time, fraction of "
          "the peak")
    train_rois = BATCH_SIZE * config.rois_per_image
    serve_rois = BATCH_SIZE * config.rpn_post_nms_top_n_test
    results = []
    for policy in policies:
        model = float32_model if policy == "float32" else build(policy)
        train_step = tf.function(model.train_step)
        serve = tf.function(lambda x, model=model: model(x, training=False))
        calls = [("training step", train_step.get_concrete_function(batch), lambda: train_step(batch),
                  lambda: model.global_step.numpy(), train_rois, "batch * rois_per_image"),
                 ("serving call", serve.get_concrete_function(images), lambda: serve(images),
                  None, serve_rois, "batch * rpn_post_nms_top_n_test")]
        for name, concrete, call, sync, unknown, note in calls:
            flops, method, lines = counted_flops(concrete.graph, unknown, note)
            print(f"  {name}, {policy}:")
            for line in lines:
                print(f"    {line}")
            for _ in range(WARMUP_CALLS):
                call()

            def timed(call=call, sync=sync):
                out = [call() for _ in range(steps)][-1]
                return sync() if sync else out[lcr_model.BOXES].numpy()

            t = median_time(timed, repeats) / steps
            results.append((name, policy, flops, method, t))
    keras.mixed_precision.set_global_policy("float32")
    print("  summary:")
    for name, policy, flops, method, t in results:
        dtype = COMPUTE_DTYPE.get(policy)
        rate = flops / t
        limit = (f" = {100 * rate / peaks[dtype]:.0f} % of the {dtype} conv/matmul peak on these shapes"
                 if dtype in peaks else "")
        print(f"  {name}, {policy}: {flops / 1e9:.2f} GFLOP counted ({method}), {1e3 * t:.1f} ms, "
              f"{rate / 1e9:.1f} GFLOP/s{limit}")
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
