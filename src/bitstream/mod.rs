//! The `.ddn` container, following `codec-spec.md` section by section:
//! - [`header`]: §2–§4, fields, ranges, model identity, the layer schedule;
//! - [`geometry`]: §5, tiles and cells;
//! - [`packer`]: Annex A (format 1), mixed-radix packing of indices;
//! - [`range_coder`], [`symbols`]: §7 (formats 2 to 7), keep flags and indices, range coded;
//! - [`filter`]: §7.5 (formats 4 to 7), the output filter's section;
//! - [`container`]: §1, §8, §9, whole files, checksums, truncation.

pub mod container;
pub mod filter;
pub mod geometry;
pub mod header;
pub mod packer;
pub mod range_coder;
pub mod symbols;

pub use container::{layer_bits, read_file, with_filter, write_file, DdnFile, Truncation};
pub use filter::FilterParams;
pub use geometry::Tile;
pub use header::{
    validate_image_size, Header, LayerSpec, ModelId, FORMAT_V1, FORMAT_V2, FORMAT_V3, FORMAT_V4,
    FORMAT_V5, FORMAT_V6, FORMAT_V7, FORMAT_VERSION, MAGIC,
};
