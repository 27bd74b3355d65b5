//! The library's error type. Every variant renders as one line that a user can act on.

use std::path::PathBuf;

use crate::schedule::ModelId;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("input is empty")]
    EmptyInput,
    #[error("not a .ddn file (wrong magic bytes)")]
    BadMagic,
    #[error("unsupported .ddn format version {version} (this build reads versions 1 to {newest})")]
    UnsupportedVersion { version: u8, newest: u8 },
    #[error("truncated header: {needed} bytes needed, {got} present")]
    TruncatedHeader { needed: usize, got: usize },
    #[error("header checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is corrupt")]
    HeaderChecksum { stored: u32, computed: u32 },
    #[error("file checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is corrupt")]
    FileChecksum { stored: u32, computed: u32 },
    #[error("invalid field {field} = {value}: {expected}")]
    InvalidField {
        field: &'static str,
        value: u64,
        expected: &'static str,
    },
    #[error("{extra} trailing bytes after the end of the .ddn file")]
    TrailingBytes { extra: usize },
    #[error("nonzero padding bits after the last index: the file is corrupt")]
    NonzeroPadding,
    #[error(
        "truncated file holds no complete layer ({present} payload bytes, layer 0 needs {needed})"
    )]
    NoCompleteLayer { present: usize, needed: u64 },
    #[error("invalid index data in layer {layer}: the file is corrupt")]
    InvalidIndexGroup { layer: usize },
    #[error("index {index} out of range for layer {layer} with K = {k}")]
    IndexOutOfRange { layer: usize, index: u32, k: u32 },
    #[error("layer {layer} has {got} indices but its geometry needs {expected}")]
    IndexCountMismatch {
        layer: usize,
        got: usize,
        expected: u64,
    },
    #[error("file was made with model {file}, but the model in use is {model}")]
    ModelMismatch { file: ModelId, model: ModelId },
    #[error("file was made with model {0}, which is not built into this version of ddn")]
    UnknownModel(ModelId),
    #[error("layer schedule in the file does not match model {model} at layer {layer}")]
    ScheduleMismatch { model: ModelId, layer: usize },
    #[error("image size {width}x{height} is out of range (each side 1..=65535, at most 256 MP)")]
    ImageSize { width: u64, height: u64 },
    #[error("cannot read image: {0}")]
    ImageDecode(String),
    #[error("cannot write image: {0}")]
    ImageEncode(String),
    #[error("{0} exists")]
    OutputExists(PathBuf),
    #[error("invalid model: {0}")]
    InvalidModel(String),
    #[error("{failed} of {total} files failed")]
    SomeFilesFailed { failed: usize, total: usize },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The error and its causes on one line, for the command line.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}
