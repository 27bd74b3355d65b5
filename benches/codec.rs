//! Criterion benchmarks: encode and decode of a 768×512 Kodak-sized image at 0.25 bpp
//! with the built-in model, the symbol coders of both formats, and one network layer.
//!
//! Run with `cargo bench`; HTML-free reports land in target/criterion.

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use ddn::bitstream::packer::{pack_indices, unpack_indices, Bits};
use ddn::bitstream::range_coder::{Adaptation, Coding, Framing};
use ddn::codec::{decode, encode, EncodeOptions, Rate};
use ddn::io::SourceImage;
use ddn::model::ddl::Candidates;
use ddn::model::{Model, DEFAULT_MODEL};

/// A 768×512 photo: kodim23 from samples/ tiled to Kodak's size.
fn kodak_sized() -> SourceImage {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/kodim23-crop.png");
    let crop = image::open(path).expect("sample image").to_rgb8();
    let rgb = image::RgbImage::from_fn(768, 512, |x, y| {
        let (w, h) = (crop.width(), crop.height());
        // Mirror at the edges so the tiled image has no hard seams.
        let fold = |v: u32, n: u32| {
            if (v / n).is_multiple_of(2) {
                v % n
            } else {
                n - 1 - v % n
            }
        };
        *crop.get_pixel(fold(x, w), fold(y, h))
    });
    SourceImage {
        rgb,
        grey: false,
        had_alpha: false,
    }
}

fn codec(c: &mut Criterion) {
    let model = Model::from_bytes(DEFAULT_MODEL, &Device::Cpu).expect("built-in model");
    let source = kodak_sized();
    let opts = EncodeOptions {
        rate: Rate::Bpp(0.25),
        ..EncodeOptions::default()
    };
    let bytes = encode(&model, &source, opts).unwrap();
    let mut group = c.benchmark_group("codec_768x512_0.25bpp");
    group.sample_size(10);
    group.bench_function("encode", |b| {
        b.iter(|| encode(&model, &source, opts).unwrap())
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode(&model, &bytes, None).unwrap())
    });
    group.finish();
}

fn packer(c: &mut Criterion) {
    let indices: Vec<u32> = (0..100_000u32)
        .map(|i| (i * 2_654_435_761u32) % 100)
        .collect();
    c.bench_function("pack_100k_indices_k100", |b| {
        b.iter(|| {
            let mut bits = Bits::new();
            pack_indices(&mut bits, 100, &indices);
            bits
        })
    });
    let mut bits = Bits::new();
    pack_indices(&mut bits, 100, &indices);
    c.bench_function("unpack_100k_indices_k100", |b| {
        b.iter(|| unpack_indices(&bits, 100, indices.len()).unwrap())
    });
}

fn range_coder(c: &mut Criterion) {
    use ddn::bitstream::symbols::{decode_layer, encode_layer};
    use ddn::bitstream::{geometry::tiles, LayerSpec};
    // One full-resolution layer of a 768×512 image in 8-px cells (6,144 of them), half
    // of them kept, as at mid rates.
    let spec = LayerSpec {
        k: 64,
        scale_log2: 0,
        cell_log2: 3,
    };
    let tiles = tiles(768, 512, 256, 8);
    let symbols: Vec<u32> = (0..6144u32)
        .map(|i| {
            let h = i.wrapping_mul(2_654_435_761) >> 7;
            if h % 2 == 0 {
                64
            } else {
                h % 64
            }
        })
        .collect();
    // The newest format's coding.
    let coding = Coding {
        framing: Framing::Trimmed,
        adaptation: Adaptation::Counted,
        layer_modes: true,
    };
    c.bench_function("range_code_layer_6144_cells", |b| {
        b.iter(|| encode_layer(&symbols, &spec, None, &tiles, coding))
    });
    let segment = encode_layer(&symbols, &spec, None, &tiles, coding);
    c.bench_function("range_decode_layer_6144_cells", |b| {
        b.iter(|| decode_layer(&segment, &spec, None, &tiles, 0, coding).unwrap())
    });
}

fn layer(c: &mut Criterion) {
    // The heaviest layer shape of the default ladder on one 256-px tile: 64 candidates of
    // 8-px cells from 48-channel space-to-depth features.
    let dev = Device::Cpu;
    let shape = ddn::model::ddl::LayerShape {
        batch: 1,
        k: 64,
        height: 256,
        width: 256,
        cell: 8,
        s2d: 2,
    };
    let feat = candle_core::Tensor::randn(0f32, 1.0, (1, 48, 128, 128), &dev).unwrap();
    let head = candle_core::Tensor::randn(0f32, 0.1, (64 * 12, 48, 1, 1), &dev).unwrap();
    let prev = candle_core::Tensor::zeros((1, 3, 256, 256), candle_core::DType::F32, &dev).unwrap();
    let target = candle_core::Tensor::randn(0f32, 0.2, (1, 3, 256, 256), &dev).unwrap();
    c.bench_function("ddl_select_256px_k64", |b| {
        b.iter(|| {
            let cands = Candidates::new(&feat, &head, &prev, shape).unwrap();
            let dist = cands.cell_distances(&target).unwrap();
            ddn::model::ddl::nearest(&dist, shape)
        })
    });
}

/// The GEMM peak of this machine next to the network's hot loop, both in FLOP/s
/// (criterion's "elem/s"): a 1024³ product straight through the `gemm` crate, and one
/// 3×3 conv of the finest level (60 → 48 channels on the 384×256 space-to-depth grid of a
/// 768×512 image) through `conv_same`. Their ratio is the share of the peak the network
/// reaches.
fn gemm_peak(c: &mut Criterion) {
    let n = 1024;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let b = a.clone();
    let mut out = vec![0f32; n * n];
    let mut group = c.benchmark_group("flops");
    group.sample_size(10);
    group.throughput(criterion::Throughput::Elements(2 * (n * n * n) as u64));
    group.bench_function("gemm_1024", |bench| {
        bench.iter(|| unsafe {
            // SAFETY: three distinct n×n row-major buffers.
            gemm::gemm(
                n,
                n,
                n,
                out.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            )
        })
    });
    let (cin, cout, h, w) = (60, 48, 256, 384);
    let x = candle_core::Tensor::rand(-1f32, 1.0, (1, cin, h, w), &Device::Cpu).unwrap();
    let k = candle_core::Tensor::rand(-1f32, 1.0, (cout, cin, 3, 3), &Device::Cpu).unwrap();
    group.throughput(criterion::Throughput::Elements(
        (2 * cin * 9 * cout * h * w) as u64,
    ));
    group.bench_function("conv3x3_finest_level", |bench| {
        bench.iter(|| ddn::model::conv::conv_same(&x, &k).unwrap())
    });
    group.finish();
}

criterion_group!(benches, codec, packer, range_coder, layer, gemm_peak);
criterion_main!(benches);
