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

/// Writes `bytes` to `path` (stdout for `-`) atomically: the data goes to a temporary file in
/// the same folder that is renamed over the target only when complete. An existing target
/// is replaced only with `force`.
pub fn write_output(path: &Path, force: bool, bytes: &[u8]) -> Result<()> {
    if is_stdio(path) {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|_| out.flush())
            .map_err(|e| Error::io("<stdout>", e));
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
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(path, e))?;
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

/// Decodes an image file of any format `image` reads, with size limits checked before the
/// pixels are allocated.
pub fn decode_image(bytes: &[u8]) -> Result<SourceImage> {
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
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::ImageDecode(e.to_string()))?;
    reader.limits(limits_for(width, height));
    let image = reader
        .decode()
        .map_err(|e| Error::ImageDecode(e.to_string()))?;
    Ok(source_from(image))
}

fn limits_for(width: u32, height: u32) -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // Room for 16-bit RGBA plus the decoder's own buffers.
    limits.max_alloc = Some(width as u64 * height as u64 * 8 * 2 + (64 << 20));
    limits
}

fn source_from(image: DynamicImage) -> SourceImage {
    let color = image.color();
    let grey = !color.has_color();
    SourceImage {
        had_alpha: color.has_alpha(),
        grey,
        rgb: image.into_rgb8(),
    }
}

/// Encodes `image` in the format named by `path`'s extension (PNG for stdout or an unknown
/// extension) and writes it with [`write_output`].
pub fn save_image(path: &Path, force: bool, image: &DynamicImage) -> Result<()> {
    let format = if is_stdio(path) {
        ImageFormat::Png
    } else {
        ImageFormat::from_path(path).unwrap_or(ImageFormat::Png)
    };
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .map_err(|e| Error::ImageEncode(e.to_string()))?;
    write_output(path, force, &bytes)
}
