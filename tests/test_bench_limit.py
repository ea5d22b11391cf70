"""benchmarks/bench_limit.py: its own FLOP count of a graph, against hand counts and TensorFlow's profiler,
and its command line (the benchmark itself is run by hand)."""

import os
import subprocess
import sys

import tensorflow as tf

from benchmarks import bench_limit

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "bench_limit.py")


def _step_graph(rows=None):
    """Forward and gradient of a stride-2 conv and a matmul; ``rows`` None leaves the matmul's first
    dimension unknown (as the RoI-dependent ops of the model can be)."""
    kernel = tf.Variable(tf.random.normal([3, 3, 4, 5]))
    weights = tf.Variable(tf.random.normal([6, 7]))

    @tf.function
    def step(images, vectors):
        with tf.GradientTape() as tape:
            y = tf.nn.conv2d(images, kernel, 2, "SAME")
            z = tf.matmul(vectors, weights)
            loss = tf.reduce_sum(y) + tf.reduce_sum(z)
        return loss, tape.gradient(loss, [kernel, weights])

    specs = (tf.TensorSpec([2, 8, 8, 4]), tf.TensorSpec([rows, 6]))
    return step.get_concrete_function(*specs).graph


def test_own_count_matches_hand_count_and_profiler():
    graph = _step_graph(rows=10)
    count = bench_limit.count_graph(graph, unknown=999)
    conv = 2 * (2 * 4 * 4 * 5) * 3 * 3 * 4  # output elements * kh * kw * cin
    matmul = 2 * 10 * 6 * 7
    # Forward and the filter gradient; forward and the weights' gradient. The graph also holds the conv's
    # gradient with respect to the images, which nothing uses (the runtime prunes it).
    assert count.by_type == {"Conv2D": conv, "Conv2DBackpropFilter": conv, "MatMul": 2 * matmul}
    assert count.flops == 2 * conv + 2 * matmul and count.substituted_ops == 0
    assert count.dead_ops == 1 and count.dead_flops == conv
    # The profiler counts every op, the unused ones and the element-wise sums (a few hundred FLOPs) too.
    assert count.flops + count.dead_flops <= bench_limit.profiler_flops(graph) < (count.flops + count.dead_flops) * 1.1
    flops, method, _ = bench_limit.counted_flops(graph, 999, "test")
    assert count.flops <= flops < count.flops * 1.1 and method == "graph profiler less never-run ops"


def test_unknown_dimension_is_taken_as_the_roi_count():
    count = bench_limit.count_graph(_step_graph(rows=None), unknown=10)
    assert count.by_type["MatMul"] == 2 * (2 * 10 * 6 * 7)
    assert count.substituted_ops == 2 and count.substituted_flops == 2 * (2 * 10 * 6 * 7)
    flops, method, _ = bench_limit.counted_flops(_step_graph(rows=None), 10, "test")
    assert count.flops <= flops < count.flops * 1.1 and "own count of 2 RoI-dependent ops" in method


def test_layer_flops():
    conv = bench_limit.Product("c", "conv", (4, 32, 32, 64), (3, 3, 64, 96), (2, 2), "SAME")
    assert conv.output_elements == 4 * 16 * 16 * 96 and conv.flops == 2 * 4 * 16 * 16 * 96 * 9 * 64
    assert bench_limit.Product("d", "matmul", (256, 6272), (6272, 256)).flops == 2 * 256 * 6272 * 256


def test_help_and_bad_precision():
    proc = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for flag in ("--repeats", "--steps", "--precision", "python benchmarks/bench_limit.py"):
        assert flag in proc.stdout, flag
    proc = subprocess.run([sys.executable, SCRIPT, "--precision", "float32,float64"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "--precision" in proc.stderr
