//! Reading inputs and writing outputs the way a user of a codec expects: `-` for
//! stdin/stdout, no partial files (write a temporary file, then rename), and no silent
//! overwrite.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, ImageReader, Limits, RgbImage};

use crate::bitstream::header::{MAX_PIXELS, MAX_SIDE};
use crate::error::{Error, Result};

/// Largest input read into memory: beyond any valid `.ddn` file or sane image file.
const MAX_INPUT_BYTES: u64 = 2 << 30;

/// Whether `path` names a PNG or JPEG file, by its extension.
pub fn is_png_or_jpeg(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    )
}

pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Reads a whole file, or stdin for `-`.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let result = if is_stdio(path) {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_INPUT_BYTES).read_to_end(&mut bytes))
    };
    result.map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// Writes `bytes` to `path` (stdout for `-`) atomically: see [`write_output_with`].
pub fn write_output(path: &Path, force: bool, bytes: &[u8]) -> Result<()> {
    write_output_with(path, force, |w| {
        w.write_all(bytes).map_err(|e| Error::io(path, e))
    })
}

/// Streams what `write` produces to `path` (stdout for `-`) atomically: the data goes to
/// a temporary file in the same folder that is renamed over the target only when
/// complete, so a failure leaves no partial output. An existing target is replaced only
/// with `force`; a device or FIFO is written into, never replaced.
pub fn write_output_with(
    path: &Path,
    force: bool,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    if is_stdio(path) {
        let mut out = std::io::stdout().lock();
        write(&mut out)?;
        return out.flush().map_err(|e| Error::io("<stdout>", e));
    }
    if is_special_file(path) {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        write(&mut out)?;
        return out.flush().map_err(|e| Error::io(path, e));
    }
    if !force && path.exists() {
        return Err(Error::OutputExists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".ddn-partial-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A finished output is an ordinary file, not a private temporary one.
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(|e| Error::io(path, e))?;
    {
        let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buffered)?;
        buffered.flush().map_err(|e| Error::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    let persisted = if force {
        tmp.persist(path).map(|_| ())
    } else {
        tmp.persist_noclobber(path).map(|_| ())
    };
    persisted.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::OutputExists(path.to_path_buf())
        } else {
            Error::io(path, e.error)
        }
    })
}

/// Whether `path` exists and is neither a regular file nor a folder (a device, a FIFO, a
/// socket), following symbolic links: such an output is written into, as shell
/// redirection does, never replaced by a file of the same name.
fn is_special_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Refuses, before any work, an output that is one of the command's `inputs` (even with
/// `force`: the input would be lost), or that exists and `force` is not given, or whose
/// folder does not exist. Devices and FIFOs are written into and need no `force`.
pub fn check_output(inputs: &[&Path], output: &Path, force: bool) -> Result<()> {
    if is_stdio(output) {
        return Ok(());
    }
    if let Some(input) = inputs
        .iter()
        .find(|input| !is_stdio(input) && same_file(input, output))
    {
        return Err(Error::InvalidArgument(format!(
            "output {} is the input {}",
            output.display(),
            input.display()
        )));
    }
    if is_special_file(output) {
        return Ok(());
    }
    if output.exists() && !force {
        return Err(Error::OutputExists(output.to_path_buf()));
    }
    match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(Error::io(
            output,
            std::io::Error::new(std::io::ErrorKind::NotFound, "its folder does not exist"),
        )),
        _ => Ok(()),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `<input without extension>.<extension>`, next to the input.
pub fn default_output(input: &Path, extension: &str) -> PathBuf {
    input.with_extension(extension)
}

/// An input image, converted to 8-bit RGB as codec-spec.md §6 says.
#[derive(Debug, Clone)]
pub struct SourceImage {
    pub rgb: RgbImage,
    /// The source had one colour channel.
    pub grey: bool,
    /// The source had an alpha channel, which is not coded.
    pub had_alpha: bool,
}

impl SourceImage {
    /// The image as grey (BT.709 luma, as the `image` crate converts).
    pub fn luma(&self) -> image::GrayImage {
        DynamicImage::ImageRgb8(self.rgb.clone()).to_luma8()
    }
}

/// Decodes an image file of any format `image` reads, with size limits checked before the
/// pixels are allocated.
pub fn decode_image(bytes: &[u8]) -> Result<SourceImage> {
    decode_image_within(bytes, MAX_PIXELS)
}

/// [`decode_image`], refusing images of more than `max_pixels` pixels before decoding.
pub fn decode_image_within(bytes: &[u8], max_pixels: u64) -> Result<SourceImage> {
    if bytes.is_empty() {
        return Err(Error::EmptyInput);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::ImageDecode(e.to_string()))?;
    if reader.format().is_none() {
        return Err(Error::ImageDecode("unrecognised image format".into()));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| Error::ImageDecode(e.to_string()))?;
    crate::bitstream::validate_image_size(width as u64, height as u64)?;
    check_pixels(width, height, max_pixels)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::ImageDecode(e.to_string()))?;
    reader.limits(limits_for(width, height));
    let image = reader
        .decode()
        .map_err(|e| Error::ImageDecode(e.to_string()))?;
    Ok(source_from(image))
}

/// Refuses an image of more than `max_pixels` pixels, before any pixel is allocated.
pub fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<()> {
    let pixels = width as u64 * height as u64;
    if pixels > max_pixels {
        return Err(Error::InvalidArgument(format!(
            "the image is {width}x{height} ({pixels} pixels), over the limit of {max_pixels}"
        )));
    }
    Ok(())
}

fn limits_for(width: u32, height: u32) -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // Room for 16-bit RGBA plus the decoder's own buffers.
    limits.max_alloc = Some(width as u64 * height as u64 * 8 * 2 + (64 << 20));
    limits
}

pub(crate) fn source_from(image: DynamicImage) -> SourceImage {
    let color = image.color();
    let grey = !color.has_color();
    SourceImage {
        had_alpha: color.has_alpha(),
        grey,
        rgb: image.into_rgb8(),
    }
}

/// The image format an output path asks for: its extension's, PNG for stdout or an
/// unknown extension.
pub fn output_format(path: &Path) -> ImageFormat {
    if is_stdio(path) {
        ImageFormat::Png
    } else {
        ImageFormat::from_path(path).unwrap_or(ImageFormat::Png)
    }
}

/// Encodes `image` in the format named by `path`'s extension (see [`output_format`]) and
/// writes it with [`write_output_with`], straight into the output where the format's
/// encoder needs no seeking, so the image is not held a second time as encoded bytes.
pub fn save_image(path: &Path, force: bool, image: &DynamicImage) -> Result<()> {
    let format = output_format(path);
    write_output_with(path, force, |out| encode_image(image, format, out))
}

fn encode_image(image: &DynamicImage, format: ImageFormat, mut out: &mut dyn Write) -> Result<()> {
    use image::codecs::{bmp, jpeg, png, pnm, qoi, tga, webp};
    let encoded = match format {
        ImageFormat::Png => image.write_with_encoder(png::PngEncoder::new(out)),
        ImageFormat::Jpeg => image.write_with_encoder(jpeg::JpegEncoder::new(out)),
        ImageFormat::Bmp => image.write_with_encoder(bmp::BmpEncoder::new(&mut out)),
        // PPM for colour and PGM for grey, as the extensions promise (not PAM).
        ImageFormat::Pnm => {
            let subtype = if image.color().has_color() {
                pnm::PnmSubtype::Pixmap(pnm::SampleEncoding::Binary)
            } else {
                pnm::PnmSubtype::Graymap(pnm::SampleEncoding::Binary)
            };
            image.write_with_encoder(pnm::PnmEncoder::new(out).with_subtype(subtype))
        }
        ImageFormat::Qoi => image.write_with_encoder(qoi::QoiEncoder::new(out)),
        ImageFormat::WebP => image.write_with_encoder(webp::WebPEncoder::new_lossless(out)),
        // See `tga_header`: uncompressed, for the readers that refuse run-length packets.
        ImageFormat::Tga => image.write_with_encoder(tga::TgaEncoder::new(out).disable_rle()),
        // The others' encoders seek (TIFF) or have no plain-writer form: encode in memory.
        _ => {
            let mut bytes = Vec::new();
            image
                .write_to(&mut Cursor::new(&mut bytes), format)
                .and_then(|_| out.write_all(&bytes).map_err(image::ImageError::IoError))
        }
    };
    encoded.map_err(|e| Error::ImageEncode(e.to_string()))
}

/// Whether [`write_rows`] can write `format` band by band.
pub fn streams_rows(format: ImageFormat) -> bool {
    matches!(
        format,
        ImageFormat::Png | ImageFormat::Pnm | ImageFormat::Tga
    )
}

/// Writes an 8-bit grey or RGB image of `width × height` in `format` (one that
/// [`streams_rows`]) to `out`; `fill` hands over its rows in order, a band at a time,
/// through the function it is given, so the image is never held whole in memory.
pub fn write_rows(
    out: &mut dyn Write,
    format: ImageFormat,
    width: u32,
    height: u32,
    grey: bool,
    fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
) -> Result<()> {
    let io = |e: std::io::Error| Error::ImageEncode(e.to_string());
    match format {
        ImageFormat::Png => write_png_rows(out, width, height, grey, fill),
        ImageFormat::Pnm => {
            let magic = if grey { "P5" } else { "P6" };
            write!(out, "{magic}\n{width} {height}\n255\n").map_err(io)?;
            fill(&mut |rows: &[u8]| out.write_all(rows).map_err(io))
        }
        ImageFormat::Tga => {
            out.write_all(&tga_header(width, height, grey))
                .map_err(io)?;
            fill(&mut |rows: &[u8]| {
                if grey {
                    return out.write_all(rows).map_err(io);
                }
                let bgr: Vec<u8> = rows
                    .chunks_exact(3)
                    .flat_map(|p| [p[2], p[1], p[0]])
                    .collect();
                out.write_all(&bgr).map_err(io)
            })
        }
        _ => Err(Error::ImageEncode(format!(
            "{format:?} cannot be written row by row"
        ))),
    }
}

/// The 18-byte header of an uncompressed TGA (true colour or grey, rows top first).
/// Uncompressed, because run-length packets that cross scan lines are legal TGA but
/// common readers (Pillow) refuse them.
fn tga_header(width: u32, height: u32, grey: bool) -> [u8; 18] {
    let (image_type, depth) = if grey { (3, 8) } else { (2, 24) };
    let [w0, w1, ..] = width.to_le_bytes();
    let [h0, h1, ..] = height.to_le_bytes();
    // Byte 17, bit 5: the first row stored is the top one.
    [
        0, 0, image_type, 0, 0, 0, 0, 0, 0, 0, 0, 0, w0, w1, h0, h1, depth, 0x20,
    ]
}

fn write_png_rows(
    out: &mut dyn Write,
    width: u32,
    height: u32,
    grey: bool,
    fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
) -> Result<()> {
    let mut encoder = png::Encoder::new(out, width, height);
    encoder.set_color(if grey {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(png_error)?;
    let mut stream = writer.stream_writer().map_err(png_error)?;
    fill(&mut |rows: &[u8]| {
        stream
            .write_all(rows)
            .map_err(|e| Error::ImageEncode(e.to_string()))
    })?;
    stream.finish().map_err(png_error)?;
    writer.finish().map_err(png_error)
}

fn png_error(e: png::EncodingError) -> Error {
    Error::ImageEncode(e.to_string())
}
