//! Every model `ddn` has shipped as its default, built into the binary.
//!
//! A `.ddn` file names its model by id (codec-spec.md §3), and users keep files for
//! years: decoding picks the built-in model the file names, so a file made with any
//! shipped model decodes with every later binary. Encoding uses the newest.

use std::sync::OnceLock;

use candle_core::Device;

use super::{model_id, Model};
use crate::error::Result;
use crate::schedule::ModelId;

/// A model built into the binary.
#[derive(Debug)]
pub struct ShippedModel {
    /// The version users see (`ddn info`, the README).
    pub version: &'static str,
    /// The model file's bytes.
    pub bytes: &'static [u8],
}

/// Oldest first; the last is the default for encoding. Never remove an entry.
pub const SHIPPED: &[ShippedModel] = &[
    ShippedModel {
        version: "v3",
        bytes: include_bytes!("../../models/v3.safetensors"),
    },
    ShippedModel {
        version: "v4",
        bytes: include_bytes!("../../models/v4.safetensors"),
    },
    ShippedModel {
        version: "v5",
        bytes: include_bytes!("../../models/v5.safetensors"),
    },
    ShippedModel {
        version: "v6",
        bytes: include_bytes!("../../models/v6.safetensors"),
    },
];

impl ShippedModel {
    /// The model id files made with this model carry (computed once per process).
    pub fn id(&self) -> ModelId {
        static IDS: OnceLock<Vec<ModelId>> = OnceLock::new();
        let ids = IDS.get_or_init(|| SHIPPED.iter().map(|m| model_id(m.bytes)).collect());
        let index = SHIPPED
            .iter()
            .position(|m| m.version == self.version)
            .expect("a shipped model is an entry of SHIPPED");
        ids[index]
    }

    pub fn load(&self, device: &Device) -> Result<Model> {
        Model::from_bytes(self.bytes, device)
    }
}

/// The model new files are made with.
pub fn newest() -> &'static ShippedModel {
    SHIPPED.last().expect("at least one shipped model")
}

/// The built-in model a file with this id was made with, if any.
pub fn find(id: ModelId) -> Option<&'static ShippedModel> {
    SHIPPED.iter().find(|m| m.id() == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_found() {
        for m in SHIPPED {
            assert_eq!(find(m.id()).map(|f| f.version), Some(m.version));
            assert_eq!(m.id(), model_id(m.bytes));
        }
        let mut ids: Vec<_> = SHIPPED.iter().map(|m| m.id().0).collect();
        ids.dedup();
        assert_eq!(ids.len(), SHIPPED.len());
        assert!(find(ModelId([0; 8])).is_none());
    }

    #[test]
    fn the_default_ladder_is_the_newest_shipped_models() {
        let config = super::super::read_config(newest().bytes).unwrap();
        assert_eq!(config, super::super::ModelConfig::default_codec());
    }
}
