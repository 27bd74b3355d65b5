//! §1, §8 and §9 of codec-spec.md: a whole file — header, payload, trailer — and what a
//! reader checks, including truncated files.

use crate::error::{Error, Result};

use super::header::{u32_at, Header};
use super::packer::{pack_indices, packed_bits, unpack_indices, Bits, BitsRef};

/// A file whose payload ended early (§9 step 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Layers whose indices were all present.
    pub complete: usize,
    /// Layers the header lists.
    pub coded: usize,
}

/// A parsed `.ddn` file: its header and the indices of every complete layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdnFile {
    pub header: Header,
    /// `layers[l]` is layer `l`'s index sequence in §7.1 order.
    pub layers: Vec<Vec<u32>>,
    pub truncation: Option<Truncation>,
}

/// `bits_l` of §7.3 for every coded layer.
pub fn layer_bits(header: &Header) -> Vec<u64> {
    header
        .layers
        .iter()
        .zip(header.index_counts())
        .map(|(layer, count)| packed_bits(layer.k, count))
        .collect()
}

/// Writes a complete file (§10). `layers` must hold one index sequence per coded layer.
pub fn write_file(header: &Header, layers: &[Vec<u32>]) -> Result<Vec<u8>> {
    let mut out = header.to_bytes()?;
    check_layers(header, layers)?;
    let mut bits = Bits::new();
    for (spec, indices) in header.layers.iter().zip(layers) {
        pack_indices(&mut bits, spec.k, indices);
    }
    out.extend_from_slice(bits.as_raw_slice());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn check_layers(header: &Header, layers: &[Vec<u32>]) -> Result<()> {
    if layers.len() != header.layers.len() {
        return Err(Error::InvalidArgument(format!(
            "{} index layers for a header with {} layers",
            layers.len(),
            header.layers.len()
        )));
    }
    let counts = header.index_counts();
    for (l, ((spec, indices), expected)) in header.layers.iter().zip(layers).zip(counts).enumerate()
    {
        if indices.len() as u64 != expected {
            return Err(Error::IndexCountMismatch {
                layer: l,
                got: indices.len(),
                expected,
            });
        }
        if let Some(&index) = indices.iter().find(|&&i| i >= spec.k) {
            return Err(Error::IndexOutOfRange {
                layer: l,
                index,
                k: spec.k,
            });
        }
    }
    Ok(())
}

/// Reads a file (§9). A truncated file yields its complete layers and a [`Truncation`].
pub fn read_file(bytes: &[u8]) -> Result<DdnFile> {
    let (header, header_len) = Header::parse(bytes)?;
    let bits = layer_bits(&header);
    let total_bits: u64 = bits.iter().sum();
    let payload_len = total_bits.div_ceil(8);
    let expected_len = header_len as u64 + payload_len + 4;
    let actual_len = bytes.len() as u64;
    if actual_len > expected_len {
        return Err(Error::TrailingBytes {
            extra: (actual_len - expected_len) as usize,
        });
    }
    let payload_end = (header_len as u64 + payload_len).min(actual_len) as usize;
    let payload = BitsRef::from_slice(&bytes[header_len..payload_end]);
    let truncation = if actual_len == expected_len {
        verify_complete(bytes, payload, total_bits)?;
        None
    } else {
        let complete = complete_layers(&bits, payload.len() as u64);
        if complete == 0 {
            return Err(Error::NoCompleteLayer {
                present: payload_end - header_len,
                needed: bits[0].div_ceil(8),
            });
        }
        Some(Truncation {
            complete,
            coded: bits.len(),
        })
    };
    let complete = truncation.map_or(bits.len(), |t| t.complete);
    let layers = unpack_layers(&header, &bits[..complete], payload)?;
    Ok(DdnFile {
        header,
        layers,
        truncation,
    })
}

fn verify_complete(bytes: &[u8], payload: &BitsRef, total_bits: u64) -> Result<()> {
    let trailer_at = bytes.len() - 4;
    let stored = u32_at(bytes, trailer_at);
    let computed = crc32fast::hash(&bytes[..trailer_at]);
    if stored != computed {
        return Err(Error::FileChecksum { stored, computed });
    }
    if payload[total_bits as usize..].any() {
        return Err(Error::NonzeroPadding);
    }
    Ok(())
}

/// How many leading layers fit wholly in `available` bits.
fn complete_layers(bits: &[u64], available: u64) -> usize {
    let mut used = 0u64;
    bits.iter()
        .take_while(|&&b| {
            used += b;
            used <= available
        })
        .count()
}

fn unpack_layers(header: &Header, bits: &[u64], payload: &BitsRef) -> Result<Vec<Vec<u32>>> {
    let counts = header.index_counts();
    let mut pos = 0usize;
    let mut layers = Vec::with_capacity(bits.len());
    for (l, &layer_bits) in bits.iter().enumerate() {
        let end = pos + layer_bits as usize;
        let indices = unpack_indices(&payload[pos..end], header.layers[l].k, counts[l] as usize)
            .map_err(|_| Error::InvalidIndexGroup { layer: l })?;
        layers.push(indices);
        pos = end;
    }
    Ok(layers)
}
