//! codec-spec.md Annex A.2 (format 1): exact bit layouts of the index packer, and its round trip.

use ddn::bitstream::packer::{
    group_bits, group_size, pack_indices, packed_bits, unpack_indices, Bits,
};
use proptest::prelude::*;

fn packed(k: u32, indices: &[u32]) -> String {
    let mut bits = Bits::new();
    pack_indices(&mut bits, k, indices);
    bits.iter().map(|b| if *b { '1' } else { '0' }).collect()
}

#[test]
fn power_of_two_k_is_plain_fixed_width() {
    assert_eq!(packed(2, &[1, 0, 1]), "101");
    assert_eq!(packed(4, &[3, 0, 2]), "110010");
    assert_eq!(packed(256, &[0xA5, 0x01]), "1010010100000001");
    // 11 indices of K = 64: a full group of 10 (60 bits), then one of 1 (6 bits).
    let indices: Vec<u32> = (0..11).map(|i| i * 5).collect();
    let expected: String = indices.iter().map(|i| format!("{i:06b}")).collect();
    assert_eq!(packed(64, &indices), expected);
}

#[test]
fn k3_pairs_pack_as_base3_numbers() {
    // 2·3 + 1 = 7 in bitlen(8) = 4 bits.
    assert_eq!(packed(3, &[2, 1]), "0111");
    // A single index of K = 3 takes bitlen(2) = 2 bits.
    assert_eq!(packed(3, &[2]), "10");
    // Five indices: 1·81 + 0·27 + 2·9 + 2·3 + 1 = 106 in bitlen(242) = 8 bits.
    assert_eq!(packed(3, &[1, 0, 2, 2, 1]), "01101010");
}

#[test]
fn k5_and_k1000_hand_computed() {
    // 4·25 + 3·5 + 2 = 117 in bitlen(124) = 7 bits.
    assert_eq!(packed(5, &[4, 3, 2]), "1110101");
    // 999·1000 + 1 = 999001 in bitlen(999999) = 20 bits.
    assert_eq!(packed(1000, &[999, 1]), format!("{:020b}", 999_001));
}

#[test]
fn group_sizes_match_the_spec_table() {
    let table = [
        (2, 64),
        (3, 40),
        (5, 27),
        (6, 24),
        (64, 10),
        (100, 9),
        (256, 8),
        (1000, 6),
        (4096, 5),
    ];
    for (k, g) in table {
        assert_eq!(group_size(k), g, "K = {k}");
    }
    assert_eq!(group_bits(3, 40), 64);
    assert_eq!(packed_bits(3, 41), 64 + 2);
    assert_eq!(packed_bits(64, 25), 150);
}

#[test]
fn k3_full_group_spans_64_bits() {
    let all_twos = vec![2u32; 40];
    assert_eq!(packed(3, &all_twos), format!("{:064b}", 3u128.pow(40) - 1));
}

#[test]
fn out_of_range_group_is_rejected() {
    // "1001" = 9 is not a valid pair of base-3 digits.
    let bits: Bits = [true, false, false, true].iter().copied().collect();
    assert!(unpack_indices(&bits, 3, 2).is_err());
}

proptest! {
    #[test]
    fn pack_then_unpack_is_identity(
        k in 2u32..=4096,
        raw in proptest::collection::vec(any::<u32>(), 0..300),
    ) {
        let indices: Vec<u32> = raw.iter().map(|v| v % k).collect();
        let mut bits = Bits::new();
        pack_indices(&mut bits, k, &indices);
        prop_assert_eq!(bits.len() as u64, packed_bits(k, indices.len() as u64));
        let back = unpack_indices(&bits, k, indices.len()).unwrap();
        prop_assert_eq!(back, indices);
    }

    #[test]
    fn packed_bits_is_within_one_bit_per_group_of_entropy(k in 2u32..=4096, count in 0u64..10_000) {
        let bits = packed_bits(k, count) as f64;
        let ideal = count as f64 * (k as f64).log2();
        let groups = count.div_ceil(group_size(k) as u64) as f64;
        prop_assert!(bits >= ideal - 1e-6 && bits <= ideal + groups);
    }
}
