//! Kernel benchmarks: square matrix products, and the forward and backward passes of the two
//! convolutions of the CIFAR-10 reference CNN at batch 32.
//!
//! Run with `cargo bench -p edgeflow-tensor --bench kernels`; set `EDGEFLOW_NUM_THREADS` for
//! the thread count (default: all cores) and `EDGEFLOW_BENCH_MATMUL_SIZES` (default
//! `256,1024,2048`) for the matmul sizes. A criterion filter after `--` picks benchmarks.
//!
//! What is timed:
//! * `matmul N`: `a.matmul(&b)` of two `[N, N]` tensors without gradients, `2 N^3` FLOP.
//! * `matrixmultiply N`: the same product through the `matrixmultiply` crate, for the choice
//!   of GEMM crate.
//! * `conv forward`: `x.conv2d(&kernel, Some(&bias), valid)` without gradients (im2col, GEMM,
//!   bias), `2 * out_positions * patch_len * filters` FLOP.
//! * `conv backward`: `loss.backward()` alone for `loss = (conv(x) * R).sum_all()`; the
//!   forward runs untimed before each timed call. The first conv's input is the network input,
//!   so only the kernel and bias get gradients (1x the forward FLOP); the second conv's input
//!   also gets one (2x). The `loss head` rows time the same backward on a leaf of the conv's
//!   output shape (the gradients of `sum_all` and `* R`); the table's backward figure is the
//!   total minus that head, i.e. the convolution's own backward.
//!
//! * `dK, db alone`: for a convolution the direct kernels take on this CPU (the first
//!   one, where AVX2 or AVX-512 is present), `kernels::direct_conv::kernel_grad` called on
//!   slices, the kernel and bias gradients its backward pass computes, without the graph and
//!   without the loss head to subtract (which is larger than this convolution's backward).
//! * `pool forward` / `pool backward`: the two 2x2 max pools of the reference CNN, timed the
//!   same way (no FLOP figure: the row gives milliseconds and the megabytes read).
//!
//! After criterion's own report the bench prints one table of median times and GFLOP/s.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{black_box, BenchmarkGroup, Criterion, SamplingMode};
use edgeflow_tensor::kernels::conv::Window;
use edgeflow_tensor::kernels::direct_conv;
use edgeflow_tensor::{threading, Conv2dOptions, Padding, Rng, Tensor};

/// Per-iteration times of each benchmark, in seconds, in the order they ran.
type Samples = Arc<Mutex<Vec<(String, Vec<f64>)>>>;

/// Times `iters` runs of `routine`, each after an untimed `setup`, and records the mean.
fn timed<S, O>(
    samples: &Samples,
    name: &str,
    iters: u64,
    mut setup: impl FnMut() -> S,
    mut routine: impl FnMut(S) -> O,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = setup();
        let start = Instant::now();
        let out = black_box(routine(input));
        total += start.elapsed();
        drop(out);
    }
    let mut all = samples.lock().unwrap();
    if all.last().is_none_or(|(n, _)| n != name) {
        all.push((name.to_string(), Vec::new()));
    }
    all.last_mut()
        .unwrap()
        .1
        .push(total.as_secs_f64() / iters as f64);
    total
}

fn random(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_uniform(shape.to_vec(), -1.0, 1.0, &mut Rng::seed(seed))
}

/// One convolution of the reference CNN.
struct ConvBench {
    name: &'static str,
    input: [usize; 4],
    kernel: [usize; 4],
    /// Whether the backward pass computes the input's gradient too.
    input_grad: bool,
}

const CONVS: [ConvBench; 2] = [
    ConvBench {
        name: "conv1 32x32x3->32",
        input: [32, 32, 32, 3],
        kernel: [3, 3, 3, 32],
        input_grad: false,
    },
    ConvBench {
        name: "conv2 15x15x32->64",
        input: [32, 15, 15, 32],
        kernel: [3, 3, 32, 64],
        input_grad: true,
    },
];

impl ConvBench {
    /// `2 * out_positions * patch_len * filters` for the valid, stride-1 convolution.
    fn forward_flop(&self) -> f64 {
        let w = self.window();
        2.0 * (w.out_positions() * w.patch_len() * self.kernel[3]) as f64
    }

    fn backward_flop(&self) -> f64 {
        self.forward_flop() * if self.input_grad { 2.0 } else { 1.0 }
    }

    /// The valid, stride-1 window geometry.
    fn window(&self) -> Window {
        let [batch, height, width, channels] = self.input;
        let [out_h, out_w] = [height - self.kernel[0] + 1, width - self.kernel[1] + 1];
        Window {
            batch,
            height,
            width,
            channels,
            kernel_h: self.kernel[0],
            kernel_w: self.kernel[1],
            stride_h: 1,
            stride_w: 1,
            out_h,
            out_w,
            pad_top: 0,
            pad_left: 0,
        }
    }

    fn output_shape(&self) -> [usize; 4] {
        let w = self.window();
        [w.batch, w.out_h, w.out_w, self.kernel[3]]
    }
}

/// A benchmark group of 10 samples, each a flat run of iterations, after a 1 s warm-up and
/// over `seconds` of measurement.
fn group<'a>(c: &'a mut Criterion, name: &str, seconds: u64) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(seconds))
        .sampling_mode(SamplingMode::Flat);
    group
}

fn bench_matmul(c: &mut Criterion, samples: &Samples, sizes: &[usize]) {
    let mut group = group(c, "matmul", 3);
    for &n in sizes {
        let (a, b) = (random(&[n, n], 1), random(&[n, n], 2));
        let name = format!("matmul {n}");
        group.bench_function(n.to_string(), |bench| {
            bench
                .iter_custom(|iters| timed(samples, &name, iters, || (), |_| a.matmul(&b).unwrap()))
        });
    }
    group.finish();
}

/// The same products through the `matrixmultiply` crate (its own threads, `threading`
/// feature; `MATMUL_NUM_THREADS` is set to the bench's thread count), the GEMM crate edgeflow
/// compared `gemm` against before choosing.
fn bench_matrixmultiply(c: &mut Criterion, samples: &Samples, sizes: &[usize]) {
    let mut group = group(c, "matrixmultiply", 3);
    for &n in sizes {
        let a = random(&[n, n], 1).to_vec_f32().unwrap();
        let b = random(&[n, n], 2).to_vec_f32().unwrap();
        let mut out = vec![0.0f32; n * n];
        let name = format!("matrixmultiply {n}");
        let stride = n as isize;
        group.bench_function(n.to_string(), |bench| {
            bench.iter_custom(|iters| {
                timed(
                    samples,
                    &name,
                    iters,
                    || (),
                    |_| {
                        // SAFETY: `a`, `b` and `out` are n x n row-major buffers, matching the
                        // dimensions and strides passed.
                        unsafe {
                            matrixmultiply::sgemm(
                                n,
                                n,
                                n,
                                1.0,
                                a.as_ptr(),
                                stride,
                                1,
                                b.as_ptr(),
                                stride,
                                1,
                                0.0,
                                out.as_mut_ptr(),
                                stride,
                                1,
                            )
                        }
                    },
                )
            })
        });
    }
    group.finish();
}

fn bench_convs(c: &mut Criterion, samples: &Samples) {
    let valid = Conv2dOptions {
        strides: (1, 1),
        padding: Padding::Valid,
    };
    let mut group = group(c, "conv", 3);
    for conv in &CONVS {
        let x = random(&conv.input, 3);
        let k = random(&conv.kernel, 4).with_requires_grad(true);
        let b = random(&conv.kernel[3..], 5).with_requires_grad(true);
        let r = random(&conv.output_shape(), 6);
        let x_grad = x.clone().with_requires_grad(conv.input_grad);

        let name = format!("{} forward", conv.name);
        group.bench_function(&name, |bench| {
            bench.iter_custom(|iters| {
                let (k, b) = (k.detach(), b.detach());
                timed(
                    samples,
                    &name,
                    iters,
                    || (),
                    |_| x.conv2d(&k, Some(&b), valid).unwrap(),
                )
            })
        });

        let name = format!("{} backward", conv.name);
        let graph = || {
            x_grad
                .conv2d(&k, Some(&b), valid)
                .unwrap()
                .mul(&r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        group.bench_function(&name, |bench| {
            bench
                .iter_custom(|iters| timed(samples, &name, iters, graph, |l| l.backward().unwrap()))
        });

        if let Some(isa) = direct_conv::plan(&conv.window(), conv.kernel[3]) {
            let name = format!("{} dK, db alone", conv.name);
            let (w, f) = (conv.window(), conv.kernel[3]);
            let xs = x.to_vec_f32().unwrap();
            let gs = r.to_vec_f32().unwrap();
            let (mut gk, mut gb) = (vec![0.0; w.patch_len() * f], vec![0.0; f]);
            group.bench_function(&name, |bench| {
                bench.iter_custom(|iters| {
                    timed(
                        samples,
                        &name,
                        iters,
                        || (),
                        |_| {
                            threading::install(|| {
                                let b = Some(&mut gb[..]);
                                direct_conv::kernel_grad(isa, &w, &xs, &gs, None, f, &mut gk, b)
                            })
                        },
                    )
                })
            });
        }

        let name = format!("{} loss head", conv.name);
        let leaf = random(&conv.output_shape(), 7).with_requires_grad(true);
        let head = || leaf.mul(&r).unwrap().sum_all().unwrap();
        group.bench_function(&name, |bench| {
            bench.iter_custom(|iters| timed(samples, &name, iters, head, |l| l.backward().unwrap()))
        });
    }
    group.finish();
}

/// The two 2x2 max pools of the reference CNN at batch 32 (after each convolution).
const POOLS: [(&str, [usize; 4]); 2] = [
    ("pool1 2x2 30x30x32", [32, 30, 30, 32]),
    ("pool2 2x2 13x13x64", [32, 13, 13, 64]),
];

fn bench_pools(c: &mut Criterion, samples: &Samples) {
    let o = Conv2dOptions {
        strides: (2, 2),
        padding: Padding::Valid,
    };
    let mut group = group(c, "pool", 2);
    for (name, shape) in POOLS {
        let x = random(&shape, 8);
        let fwd = format!("{name} forward");
        group.bench_function(&fwd, |bench| {
            bench.iter_custom(|iters| {
                timed(
                    samples,
                    &fwd,
                    iters,
                    || (),
                    |_| x.max_pool2d((2, 2), o).unwrap(),
                )
            })
        });
        let xg = x.clone().with_requires_grad(true);
        let out = [shape[0], shape[1] / 2, shape[2] / 2, shape[3]];
        let r = random(&out, 9);
        let graph = || {
            xg.max_pool2d((2, 2), o)
                .unwrap()
                .mul(&r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let bwd = format!("{name} backward");
        group.bench_function(&bwd, |bench| {
            bench.iter_custom(|iters| timed(samples, &bwd, iters, graph, |l| l.backward().unwrap()))
        });
        let leaf = random(&out, 10).with_requires_grad(true);
        let head = || leaf.mul(&r).unwrap().sum_all().unwrap();
        let head_name = format!("{name} loss head");
        group.bench_function(&head_name, |bench| {
            bench.iter_custom(|iters| {
                timed(samples, &head_name, iters, head, |l| l.backward().unwrap())
            })
        });
    }
    group.finish();
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        0.5 * (v[mid - 1] + v[mid])
    }
}

/// The median per-iteration time of a benchmark, in seconds, or `None` when a criterion
/// filter skipped it. The first sample (criterion's first warm-up call, with cold caches and
/// page faults) is left out when there are others.
fn median_of(samples: &Samples, name: &str) -> Option<f64> {
    let all = samples.lock().unwrap();
    let v = &all.iter().find(|(n, _)| n == name)?.1;
    Some(median(if v.len() > 1 { &v[1..] } else { v }))
}

fn print_row(name: &str, flop: f64, secs: f64, note: &str) {
    let gflop = flop / 1e9;
    let (ms, rate) = (secs * 1e3, gflop / secs);
    println!("{name:<30} {gflop:>7.3} {ms:>9.3} {rate:>8.1}  {note}");
}

fn print_table(samples: &Samples, sizes: &[usize], threads: usize) {
    println!();
    println!("edgeflow-tensor kernels, {threads} thread(s), median per call");
    let head = ("benchmark", "GFLOP", "ms", "GFLOP/s");
    println!(
        "{:<30} {:>7} {:>9} {:>8}  note",
        head.0, head.1, head.2, head.3
    );
    for &n in sizes {
        let name = format!("matmul {n}");
        if let Some(secs) = median_of(samples, &name) {
            print_row(&name, 2.0 * (n as f64).powi(3), secs, "");
        }
    }
    for &n in sizes {
        let name = format!("matrixmultiply {n}");
        if let Some(secs) = median_of(samples, &name) {
            print_row(
                &name,
                2.0 * (n as f64).powi(3),
                secs,
                "the crate not chosen",
            );
        }
    }
    for conv in &CONVS {
        let name = format!("{} forward", conv.name);
        if let Some(fwd) = median_of(samples, &name) {
            print_row(&name, conv.forward_flop(), fwd, "");
        }
        let name = format!("{} backward", conv.name);
        let head = median_of(samples, &format!("{} loss head", conv.name));
        if let (Some(total), Some(head)) = (median_of(samples, &name), head) {
            let grads = if conv.input_grad {
                "dx, dK, db"
            } else {
                "dK, db"
            };
            let (t, h) = (total * 1e3, head * 1e3);
            let note = format!("{grads}: backward() {t:.3} ms - loss head {h:.3} ms");
            print_row(&name, conv.backward_flop(), total - head, &note);
        }
        let name = format!("{} dK, db alone", conv.name);
        if let Some(t) = median_of(samples, &name) {
            let note = "dK, db: direct_conv::kernel_grad on slices";
            print_row(&name, conv.forward_flop(), t, note);
        }
    }
    for (name, shape) in POOLS {
        let n: usize = shape.iter().product();
        // Pooling does no arithmetic to speak of: its row shows the time and the input read.
        let mb = (n * 4) as f64 / 1e6;
        let fwd = format!("{name} forward");
        if let Some(t) = median_of(samples, &fwd) {
            println!(
                "{fwd:<30} {:>7} {:>9.3} {:>8}  reads {mb:.1} MB",
                "-",
                t * 1e3,
                "-"
            );
        }
        let bwd = format!("{name} backward");
        let head = median_of(samples, &format!("{name} loss head"));
        if let (Some(total), Some(head)) = (median_of(samples, &bwd), head) {
            let ms = (total - head) * 1e3;
            println!(
                "{bwd:<30} {:>7} {ms:>9.3} {:>8}  minus the loss head",
                "-", "-"
            );
        }
    }
}

fn matmul_sizes() -> Vec<usize> {
    match std::env::var("EDGEFLOW_BENCH_MATMUL_SIZES") {
        Ok(v) => v
            .split(',')
            .map(|s| s.trim().parse().expect("sizes are integers"))
            .collect(),
        Err(_) => vec![256, 1024, 2048],
    }
}

fn main() {
    let threads = std::env::var(threading::NUM_THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    threading::set_num_threads(threads);
    std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
    let sizes = matmul_sizes();

    let samples: Samples = Arc::default();
    let mut c = Criterion::default().configure_from_args();
    bench_matmul(&mut c, &samples, &sizes);
    bench_matrixmultiply(&mut c, &samples, &sizes);
    bench_convs(&mut c, &samples);
    bench_pools(&mut c, &samples);
    c.final_summary();

    print_table(&samples, &sizes, threads);
}
