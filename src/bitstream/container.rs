//! §1, §8 and §9 of codec-spec.md: a whole file — header, payload, trailer — and what a
//! reader checks, including truncated files.

use crate::error::{Error, Result};

use super::filter::FilterParams;
use super::header::{has_filter, u32_at, Header, FORMAT_V1};
use super::packer::{pack_indices, packed_bits, unpack_indices, Bits, BitsRef};
use super::symbols::{decode_layer, encode_layer, most_symbols};

/// A file whose payload ended early (§9 step 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Layers whose indices were all present.
    pub complete: usize,
    /// Layers the header lists.
    pub coded: usize,
}

/// A parsed `.ddn` file: its header and the symbols of every complete layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdnFile {
    pub header: Header,
    /// `layers[l]` is layer `l`'s symbol sequence in §7.1 order: candidate indices below
    /// `K`, and in formats 2 to 7 also `K`, keep.
    pub layers: Vec<Vec<u32>>,
    pub truncation: Option<Truncation>,
    /// The output filter of formats 4 to 7 (§7.5), when the file has one and is complete.
    pub filter: Option<FilterParams>,
}

/// The payload bits of every coded layer: format 1's `bits_l`, the segment
/// lengths of the later formats times 8.
pub fn layer_bits(header: &Header) -> Vec<u64> {
    if header.version != FORMAT_V1 {
        return header.segments.iter().map(|&b| 8 * b as u64).collect();
    }
    header
        .layers
        .iter()
        .zip(header.index_counts())
        .map(|(layer, count)| packed_bits(layer.k, count))
        .collect()
}

/// Writes a complete file (§10) in the header's format. `layers` must hold one symbol
/// sequence per coded layer; formats 2 to 7 fill in the header's segment lengths.
pub fn write_file(header: &Header, layers: &[Vec<u32>]) -> Result<Vec<u8>> {
    check_layers(header, layers)?;
    let payload = if header.version == FORMAT_V1 {
        let mut bits = Bits::new();
        for (spec, indices) in header.layers.iter().zip(layers) {
            pack_indices(&mut bits, spec.k, indices);
        }
        vec![bits.into_vec()]
    } else {
        encode_segments(header, layers)
    };
    let mut header = header.clone();
    if header.version != FORMAT_V1 {
        header.segments = payload.iter().map(|s| s.len() as u32).collect();
    }
    header.filter_len = 0;
    let mut out = header.to_bytes()?;
    payload.iter().for_each(|s| out.extend_from_slice(s));
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A complete file `bytes` of format 4 or later with its filter section replaced by
/// `filter`'s (none: `F = 0`): the header's `F` and both CRCs follow.
pub fn with_filter(bytes: &[u8], filter: Option<&FilterParams>) -> Result<Vec<u8>> {
    let (mut header, header_len) = Header::parse(bytes)?;
    if !has_filter(header.version) {
        return Err(Error::InvalidArgument(format!(
            "an output filter needs format 4 or later, not {}",
            header.version
        )));
    }
    let payload_len: usize = header.segments.iter().map(|&s| s as usize).sum();
    let payload = bytes
        .get(header_len..header_len + payload_len)
        .ok_or_else(|| {
            Error::InvalidArgument("an output filter needs a complete file".to_string())
        })?;
    let section = filter
        .map(|f| f.to_bytes(header.version))
        .transpose()?
        .unwrap_or_default();
    header.filter_len = section.len() as u32;
    let mut out = header.to_bytes()?;
    out.extend_from_slice(payload);
    out.extend_from_slice(&section);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// §7.4 (formats 2 to 7): one range-coded segment per layer.
fn encode_segments(header: &Header, layers: &[Vec<u32>]) -> Vec<Vec<u8>> {
    let tiles = header.tiles();
    (0..layers.len())
        .map(|l| {
            let prev = l.checked_sub(1).map(|p| (header.layers[p], &layers[p][..]));
            encode_layer(&layers[l], &header.layers[l], prev, &tiles, header.coding())
        })
        .collect()
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
        let largest = if header.version == FORMAT_V1 {
            spec.k - 1
        } else {
            spec.k
        };
        if let Some(&index) = indices.iter().find(|&&i| i > largest) {
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
    let filter_len = header.filter_len as u64;
    let expected_len = header_len as u64 + payload_len + filter_len + 4;
    let actual_len = bytes.len() as u64;
    if actual_len > expected_len {
        return Err(Error::TrailingBytes {
            extra: (actual_len - expected_len) as usize,
        });
    }
    let payload_end = (header_len as u64 + payload_len).min(actual_len) as usize;
    let payload = BitsRef::from_slice(&bytes[header_len..payload_end]);
    let mut filter = None;
    let truncation = if actual_len == expected_len {
        verify_complete(bytes, payload, total_bits)?;
        if filter_len > 0 {
            let at = payload_end;
            filter = Some(FilterParams::parse(
                &bytes[at..at + filter_len as usize],
                header.version,
            )?);
        }
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
    let layers = if header.version == FORMAT_V1 {
        unpack_layers(&header, &bits[..complete], payload)?
    } else {
        decode_segments(&header, complete, &bytes[header_len..payload_end])?
    };
    Ok(DdnFile {
        header,
        layers,
        truncation,
        filter,
    })
}

/// §7.4 (formats 2 to 7): the symbols of the first `complete` layers.
fn decode_segments(header: &Header, complete: usize, payload: &[u8]) -> Result<Vec<Vec<u32>>> {
    let coding = header.coding();
    // Before anything is allocated per tile or per cell: no segment can hold more symbols
    // than its bytes allow (§7.4).
    for (l, (&cells, &len)) in header
        .index_counts()
        .iter()
        .zip(&header.segments)
        .enumerate()
    {
        if l < complete && cells > most_symbols(len as u64, coding) {
            return Err(Error::InvalidIndexGroup { layer: l });
        }
    }
    let tiles = header.tiles();
    let mut layers: Vec<Vec<u32>> = Vec::with_capacity(complete);
    let mut start = 0usize;
    for l in 0..complete {
        let end = start + header.segments[l] as usize;
        let prev = l.checked_sub(1).map(|p| (header.layers[p], &layers[p][..]));
        let segment = &payload[start..end];
        let symbols = decode_layer(segment, &header.layers[l], prev, &tiles, l, coding)?;
        // Only the writer's own bytes are accepted, so every file is canonical and a
        // damaged segment in a truncated file (no trailer CRC) is still likely caught.
        if encode_layer(&symbols, &header.layers[l], prev, &tiles, coding) != segment {
            return Err(Error::InvalidIndexGroup { layer: l });
        }
        layers.push(symbols);
        start = end;
    }
    Ok(layers)
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
