//! Every model `ddn` has shipped as its default, built into the binary.
//!
//! A `.ddn` file names its model by id (codec-spec.md §3), and users keep files for
//! years: decoding picks the built-in model the file names, so a file made with any
//! shipped model decodes with every later binary. Encoding uses the newest.

use candle_core::Device;

use super::Model;
use crate::error::Result;
use crate::schedule::ModelId;

/// A model built into the binary.
#[derive(Debug)]
pub struct ShippedModel {
    /// The version users see (`ddn info`, the README).
    pub version: &'static str,
    /// The id files made with this model carry: the hash of `bytes` (tested), written
    /// out so that decoding does not hash every built-in model (52 MB) first.
    pub id: ModelId,
    /// The model file's bytes.
    pub bytes: &'static [u8],
}

/// Oldest first; the last is the default for encoding. Never remove an entry.
pub const SHIPPED: &[ShippedModel] = &[
    ShippedModel {
        version: "v3",
        id: ModelId(0x84d9_dbae_f654_f86e_u64.to_be_bytes()),
        bytes: include_bytes!("../../models/v3.safetensors"),
    },
    ShippedModel {
        version: "v4",
        id: ModelId(0xa31a_aaec_4031_5c70_u64.to_be_bytes()),
        bytes: include_bytes!("../../models/v4.safetensors"),
    },
    ShippedModel {
        version: "v5",
        id: ModelId(0x36e0_2fd4_f10a_ebca_u64.to_be_bytes()),
        bytes: include_bytes!("../../models/v5.safetensors"),
    },
    ShippedModel {
        version: "v6",
        id: ModelId(0x324d_7193_1236_f29f_u64.to_be_bytes()),
        bytes: include_bytes!("../../models/v6.safetensors"),
    },
    ShippedModel {
        version: "v7",
        id: ModelId(0x5292_cda7_6b30_8d64_u64.to_be_bytes()),
        bytes: include_bytes!("../../models/v7.safetensors"),
    },
];

impl ShippedModel {
    pub fn load(&self, device: &Device) -> Result<Model> {
        Model::from_bytes_with_id(self.bytes, self.id, device)
    }
}

/// The model new files are made with.
pub fn newest() -> &'static ShippedModel {
    SHIPPED.last().expect("at least one shipped model")
}

/// The built-in model a file with this id was made with, if any.
pub fn find(id: ModelId) -> Option<&'static ShippedModel> {
    SHIPPED.iter().find(|m| m.id == id)
}

#[cfg(test)]
mod tests {
    use super::super::model_id;
    use super::*;

    #[test]
    fn ids_are_distinct_and_found() {
        for m in SHIPPED {
            assert_eq!(find(m.id).map(|f| f.version), Some(m.version));
            assert_eq!(m.id, model_id(m.bytes));
        }
        let mut ids: Vec<_> = SHIPPED.iter().map(|m| m.id.0).collect();
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
