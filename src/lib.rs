//! `ddn`: an image codec built on Discrete Distribution Networks.
//!
//! The crate is a library with a thin command-line front end (`src/main.rs`). Most users
//! need only [`Codec`]: `Codec::new()?`, then `compress(&image, Rate::Bpp(0.25))?` to
//! `.ddn` bytes and `decompress(&bytes)?` back to an [`image::DynamicImage`].
//! - [`bitstream`]: the `.ddn` container of `codec-spec.md`: header, geometry, index packing.
//! - [`error`]: the one error type every module returns.
//! - [`io`]: reading images and writing outputs safely (atomic, no clobbering).

mod api;
pub mod bitstream;
pub mod codec;
pub mod error;
#[cfg(feature = "eval")]
pub mod eval;
pub mod guide;
pub mod info;
pub mod io;
pub mod metrics;
pub mod model;
pub mod resample;
pub mod rng;
pub mod schedule;
#[cfg(feature = "train")]
pub mod toy2d;
#[cfg(feature = "train")]
pub mod train;

pub use api::Codec;
pub use codec::Rate;
pub use error::{Error, Result};
