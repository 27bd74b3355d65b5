//! The `.ddn` container, following `codec-spec.md` section by section:
//! - [`header`]: §2–§4, fields, ranges, model identity, the layer schedule;
//! - [`geometry`]: §5, tiles and cells;
//! - [`packer`]: §7, mixed-radix packing of indices;
//! - [`container`]: §1, §8, §9, whole files, checksums, truncation.

pub mod container;
pub mod geometry;
pub mod header;
pub mod packer;

pub use container::{layer_bits, read_file, write_file, DdnFile, Truncation};
pub use geometry::Tile;
pub use header::{validate_image_size, Header, LayerSpec, ModelId, FORMAT_VERSION, MAGIC};
