//! What a hostile or careless user tried, and what `ddn` must do instead: write into
//! devices and FIFOs rather than replace them, never overwrite an input, report argument
//! errors in one line, bound what a file may make it allocate, write TGA that other
//! readers accept, and code every valid image when no rate is given.

mod common;

use std::io::Read;
use std::process::{Command, Output};

use common::{assert_clean_failure, Sandbox};

fn ddn_plain(sb: &Sandbox, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ddn"))
        .current_dir(sb.dir.path())
        .args(args)
        .output()
        .unwrap()
}

fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_output_is_written_into_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let sb = Sandbox::new();
    let fifo = sb.path("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            bytes
        })
    };
    succeeded(&sb.ddn(&["compress", "img.png", "-o", "pipe", "-f", "--layers", "2"]));
    let through_fifo = reader.join().unwrap();
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    succeeded(&sb.ddn(&["compress", "img.png", "-o", "plain.ddn", "--layers", "2"]));
    assert_eq!(through_fifo, std::fs::read(sb.path("plain.ddn")).unwrap());
}

#[test]
fn restore_never_overwrites_any_of_its_inputs() {
    let sb = Sandbox::new();
    common::test_image(16, 16, 1)
        .save(sb.path("mask.png"))
        .unwrap();
    common::test_image(37, 29, 2)
        .save(sb.path("ref.png"))
        .unwrap();
    let before: Vec<Vec<u8>> = ["img.png", "mask.png", "ref.png"]
        .iter()
        .map(|n| std::fs::read(sb.path(n)).unwrap())
        .collect();
    for (task, output) in [
        ("denoise", "img.png"),
        ("inpaint", "mask.png"),
        ("denoise", "ref.png"),
    ] {
        let out = ddn_plain(
            &sb,
            &[
                "restore",
                "img.png",
                "--task",
                task,
                "--mask",
                "mask.png",
                "--reference",
                "ref.png",
                "-o",
                output,
                "-f",
            ],
        );
        assert_clean_failure(&out, "is the input");
    }
    let after: Vec<Vec<u8>> = ["img.png", "mask.png", "ref.png"]
        .iter()
        .map(|n| std::fs::read(sb.path(n)).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn argument_errors_are_one_line_with_status_2() {
    let sb = Sandbox::new();
    for args in [
        &["compress", "img.png", "--bogus"][..],
        &["compress", "img.png", "--layers", "-1"],
        &["compress", "img.png", "--bpp", "0.1", "--lambda", "3"],
        &["compress"],
        &["decompress"],
        &["frobnicate"],
    ] {
        let out = ddn_plain(&sb, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("ddn: error: "), "{args:?}: {stderr}");
    }
    let help = ddn_plain(&sb, &["restore", "--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("2, 4 or 8"));
}

#[test]
fn max_pixels_refuses_large_images_before_decoding() {
    let sb = Sandbox::new();
    succeeded(&sb.ddn(&["compress", "img.png", "--layers", "2"]));
    let out = sb.ddn(&[
        "decompress",
        "img.ddn",
        "-o",
        "x.png",
        "--max-pixels",
        "1000",
    ]);
    assert_clean_failure(&out, "37x29");
    let out = sb.ddn(&["compress", "img.png", "-o", "y.ddn", "--max-pixels", "1000"]);
    assert_clean_failure(&out, "37x29");
    assert_eq!(sb.extra_files(), vec!["img.ddn".to_string()]);
}

#[test]
fn ppm_and_pgm_outputs_are_what_their_names_say() {
    let sb = Sandbox::new();
    let grey = image::DynamicImage::ImageRgb8(common::test_image(20, 11, 6)).to_luma8();
    grey.save(sb.path("grey.png")).unwrap();
    succeeded(&sb.ddn(&["compress", "img.png", "--layers", "3"]));
    succeeded(&sb.ddn(&["compress", "grey.png", "--layers", "3"]));
    for (ddn, out, magic) in [
        ("img.ddn", "img.ppm", "P6\n37 29\n255\n"),
        ("grey.ddn", "grey.pgm", "P5\n20 11\n255\n"),
        ("img.ddn", "img.pnm", "P6\n37 29\n255\n"),
        ("img.ddn", "img.bmp", "BM"),
    ] {
        succeeded(&sb.ddn(&["decompress", ddn, "-o", out]));
        let bytes = std::fs::read(sb.path(out)).unwrap();
        assert!(bytes.starts_with(magic.as_bytes()), "{out}");
        succeeded(&sb.ddn(&["decompress", ddn, "-o", "ref.png", "-f"]));
        let reference = image::open(sb.path("ref.png")).unwrap();
        assert_eq!(
            image::open(sb.path(out)).unwrap().to_rgb8(),
            reference.to_rgb8(),
            "{out}"
        );
    }
}

#[test]
fn tga_output_is_uncompressed() {
    let sb = Sandbox::new();
    succeeded(&sb.ddn(&["compress", "img.png", "--layers", "3"]));
    succeeded(&sb.ddn(&["decompress", "img.ddn", "-o", "img.tga"]));
    let tga = std::fs::read(sb.path("img.tga")).unwrap();
    // Image type 2: uncompressed true colour (10 would be run-length encoded).
    assert_eq!(tga[2], 2);
    succeeded(&sb.ddn(&["decompress", "img.ddn", "-o", "img2.png"]));
    let png = image::open(sb.path("img2.png")).unwrap().to_rgb8();
    let tga = image::open(sb.path("img.tga")).unwrap().to_rgb8();
    assert_eq!(png, tga);
}

#[test]
fn small_mistakes_are_refused_clearly() {
    let sb = Sandbox::new();
    assert_clean_failure(
        &sb.ddn(&["compress", "img.png", "-o", "a.ddn", "--bpp", "inf"]),
        "finite",
    );
    for tile in ["0", "1"] {
        assert_clean_failure(
            &sb.ddn(&["compress", "img.png", "-o", "a.ddn", "--tile", tile]),
            "tile",
        );
    }
    succeeded(&sb.ddn(&["compress", "img.png", "--layers", "3"]));
    assert_clean_failure(
        &sb.ddn(&["decompress", "img.ddn", "-o", "x.png", "--layers", "999"]),
        "codes 3",
    );
    let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([10, 20, 30, 128]));
    rgba.save(sb.path("alpha.png")).unwrap();
    assert_clean_failure(
        &sb.ddn(&["compress", "alpha.png", "-o", "a.ddn", "--bpp", "0.25"]),
        "smallest file",
    );
    assert_eq!(
        sb.extra_files(),
        vec!["alpha.png".to_string(), "img.ddn".to_string()]
    );
}

#[test]
fn every_image_compresses_without_a_rate_flag() {
    let sb = Sandbox::new();
    for (w, h) in [(1, 1), (2, 3), (17, 1), (1, 40), (29, 29)] {
        let name = format!("s{w}x{h}.png");
        common::test_image(w, h, 5).save(sb.path(&name)).unwrap();
        succeeded(&sb.ddn(&["compress", &name]));
        let ddn = format!("s{w}x{h}.ddn");
        let back = format!("s{w}x{h}.out.png");
        succeeded(&sb.ddn(&["decompress", &ddn, "-o", &back]));
        let decoded = image::open(sb.path(&back)).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (w, h));
    }
    // An explicit target that cannot be met is refused, saying what the smallest is.
    let out = sb.ddn(&["compress", "s1x1.png", "-o", "t.ddn", "--bpp", "0.25"]);
    assert_clean_failure(&out, "smallest file for this image,");
}

#[test]
fn png_streamed_band_by_band_equals_the_whole_image() {
    let sb = Sandbox::new();
    common::test_image(150, 97, 4)
        .save(sb.path("wide.png"))
        .unwrap();
    let grey = image::DynamicImage::ImageRgb8(common::test_image(61, 130, 6)).to_luma8();
    grey.save(sb.path("grey.png")).unwrap();
    for name in ["wide", "grey"] {
        let (src, ddn) = (format!("{name}.png"), format!("{name}.ddn"));
        // Small tiles: many bands, and a last row and column of partial tiles.
        succeeded(&sb.ddn(&["compress", &src, "--layers", "4", "--tile", "16"]));
        let (png, bmp) = (format!("{name}.out.png"), format!("{name}.out.bmp"));
        succeeded(&sb.ddn(&["decompress", &ddn, "-o", &png]));
        succeeded(&sb.ddn(&["decompress", &ddn, "-o", &bmp]));
        let streamed = image::open(sb.path(&png)).unwrap();
        let whole = image::open(sb.path(&bmp)).unwrap();
        let expected = if name == "grey" {
            image::ColorType::L8
        } else {
            image::ColorType::Rgb8
        };
        assert_eq!(streamed.color(), expected, "{name}");
        assert_eq!(streamed.to_rgb8(), whole.to_rgb8(), "{name}");
    }
}
