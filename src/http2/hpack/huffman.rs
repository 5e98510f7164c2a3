//! The HPACK Huffman code (RFC 7541 5.2, Appendix B): clients may Huffman-code any string, so the
//! decoder must read it, and the encoder uses it to keep response header blocks small.

use super::HpackError;

/// Code length in bits of every symbol 0..=255 and EOS (256), from RFC 7541 Appendix B. The code is
/// canonical (codes of one length are consecutive, in symbol order), so the lengths fix every code.
#[rustfmt::skip]
const LENGTHS: [u8; 257] = [
    // 0..=31: control characters
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    // 32..=47: ' ' ! " # $ % & ' ( ) * + , - . /
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    // 48..=63: 0-9 : ; < = > ?
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    // 64..=79: @ A-O
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    // 80..=95: P-Z [ \ ] ^ _
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    // 96..=111: ` a-o
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    // 112..=127: p-z { | } ~ DEL
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    // 128..=255
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    // 256: EOS
    30,
];

/// The longest code (EOS); no symbol is longer.
const MAX_LEN: usize = 30;
/// The EOS symbol, which must never appear inside a string (RFC 7541 5.2).
const EOS: u16 = 256;

/// Canonical code of every symbol, right-aligned.
const CODES: [u32; 257] = build_codes();
/// Per code length: the first code of that length, how many codes have it, and where its symbols
/// start in `SORTED`.
const FIRST: [u32; MAX_LEN + 1] = build_first();
const COUNT: [u32; MAX_LEN + 1] = build_count();
const OFFSET: [u32; MAX_LEN + 1] = build_offset();
/// Symbols ordered by (code length, symbol), i.e. by code.
const SORTED: [u16; 257] = build_sorted();

const fn build_codes() -> [u32; 257] {
    let mut codes = [0u32; 257];
    let mut code: u32 = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        let mut sym = 0;
        while sym < 257 {
            if LENGTHS[sym] as usize == len {
                codes[sym] = code;
                code += 1;
            }
            sym += 1;
        }
        code <<= 1;
        len += 1;
    }
    codes
}

const fn build_count() -> [u32; MAX_LEN + 1] {
    let mut count = [0u32; MAX_LEN + 1];
    let mut sym = 0;
    while sym < 257 {
        count[LENGTHS[sym] as usize] += 1;
        sym += 1;
    }
    count
}

const fn build_first() -> [u32; MAX_LEN + 1] {
    let count = build_count();
    let mut first = [0u32; MAX_LEN + 1];
    let mut code: u32 = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        first[len] = code;
        code = (code + count[len]) << 1;
        len += 1;
    }
    first
}

const fn build_offset() -> [u32; MAX_LEN + 1] {
    let count = build_count();
    let mut offset = [0u32; MAX_LEN + 1];
    let mut acc = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        offset[len] = acc;
        acc += count[len];
        len += 1;
    }
    offset
}

const fn build_sorted() -> [u16; 257] {
    let mut sorted = [0u16; 257];
    let mut i = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        let mut sym = 0;
        while sym < 257 {
            if LENGTHS[sym] as usize == len {
                sorted[i] = sym as u16;
                i += 1;
            }
            sym += 1;
        }
        len += 1;
    }
    sorted
}

/// Length in bytes of `src` once Huffman-coded, so the encoder can pick the shorter form.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&b| LENGTHS[b as usize] as usize).sum();
    bits.div_ceil(8)
}

/// Huffman-codes `src` onto `dst`, padding the last byte with the most significant bits of EOS
/// (all ones), as RFC 7541 5.2 requires.
pub fn encode(src: &[u8], dst: &mut Vec<u8>) {
    dst.reserve(encoded_len(src));
    // Bits are written four bytes at a time (every answer's apns-id is coded here): fewer
    // than 32 are kept, and a code is at most 30, so `acc` never holds more than 62.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let len = u32::from(LENGTHS[b as usize]);
        acc = (acc << len) | u64::from(CODES[b as usize]);
        bits += len;
        if bits >= 32 {
            bits -= 32;
            dst.extend_from_slice(&((acc >> bits) as u32).to_be_bytes());
            acc &= (1u64 << bits) - 1;
        }
    }
    while bits >= 8 {
        bits -= 8;
        dst.push((acc >> bits) as u8);
    }
    acc &= (1u64 << bits) - 1;
    if bits > 0 {
        let pad = 8 - bits;
        dst.push(((acc << pad) | ((1u64 << pad) - 1)) as u8);
    }
}

/// Symbols whose code is at most 8 bits long, looked up by the next 8 input bits: entry =
/// `len << 9 | symbol`, 0 when the code is longer. Every printable ASCII character that header
/// values like JWTs, device-token paths and topics use is in it, so most symbols take one lookup.
const SHORT: [u16; 256] = build_short();

const fn build_short() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut sym = 0;
    while sym < 257 {
        let len = LENGTHS[sym] as usize;
        if len <= 8 {
            let base = (CODES[sym] as usize) << (8 - len);
            let mut i = 0;
            while i < 1 << (8 - len) {
                table[base + i] = ((len as u16) << 9) | sym as u16;
                i += 1;
            }
        }
        sym += 1;
    }
    table
}

/// Up to two symbols whose codes fit in the next 12 input bits, looked up by those bits: entry =
/// `first | second << 8 | count << 16 | bits << 18`, count 0 when the first code is longer than
/// 8 bits. A device-token path is hex digits of 5 and 6 bits, so most lookups give two symbols
/// (the table is 16 KiB).
const PAIR: [u32; 1 << PAIR_BITS] = build_pair();
const PAIR_BITS: u32 = 12;

const fn build_pair() -> [u32; 1 << PAIR_BITS] {
    let mut table = [0u32; 1 << PAIR_BITS];
    let mut idx = 0usize;
    while idx < 1 << PAIR_BITS {
        let first = SHORT[idx >> (PAIR_BITS - 8)];
        if first != 0 {
            let len1 = (first >> 9) as u32;
            let rest = (idx << len1) & ((1 << PAIR_BITS) - 1);
            let second = SHORT[rest >> (PAIR_BITS - 8)];
            let len2 = (second >> 9) as u32;
            table[idx] = if second != 0 && len1 + len2 <= PAIR_BITS {
                (first as u32 & 0xff)
                    | ((second as u32 & 0xff) << 8)
                    | (2 << 16)
                    | ((len1 + len2) << 18)
            } else {
                (first as u32 & 0xff) | (1 << 16) | (len1 << 18)
            };
        }
        idx += 1;
    }
    table
}

/// Decodes a Huffman-coded string. Fails on an EOS symbol, on padding longer than 7 bits, and on
/// padding that is not a prefix of EOS (RFC 7541 5.2).
pub fn decode(src: &[u8]) -> Result<Vec<u8>, HpackError> {
    // The shortest code is 5 bits, so the output is at most 8/5 of the input.
    let mut out = Vec::with_capacity(src.len().saturating_mul(8) / 5 + 1);
    // Left-aligned bit buffer: the top `nbits` bits are input not yet decoded, the rest zero.
    let mut acc: u64 = 0;
    let mut nbits: u32 = 0;
    let mut pos = 0;
    // Every request's :path goes through here: input is loaded eight bytes at a time, and
    // symbols are decoded without bounds checks while at least MAX_LEN bits are buffered.
    loop {
        if let Some(chunk) = src.get(pos..pos + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            // Whole bytes that fit after the buffered bits (1 to 8, as nbits < MAX_LEN or 0).
            let take = (64 - nbits) / 8;
            acc |= (u64::from_be_bytes(word) >> (64 - 8 * take)) << (64 - nbits - 8 * take);
            pos += take as usize;
            nbits += 8 * take;
        } else {
            while nbits <= 56 {
                let Some(&b) = src.get(pos) else { break };
                acc |= u64::from(b) << (56 - nbits);
                pos += 1;
                nbits += 8;
            }
        }
        // After a refill fewer than MAX_LEN bits means the input is used up.
        if nbits < MAX_LEN as u32 {
            break;
        }
        // The code is complete: MAX_LEN bits always begin with a whole code (EOS included).
        while nbits >= MAX_LEN as u32 {
            let pair = PAIR[(acc >> (64 - PAIR_BITS)) as usize];
            let count = (pair >> 16) & 3;
            if count != 0 {
                out.push(pair as u8);
                if count == 2 {
                    out.push((pair >> 8) as u8);
                }
                acc <<= pair >> 18;
                nbits -= pair >> 18;
                continue;
            }
            let Some((sym, len)) = symbol(acc, nbits) else {
                return Err(HpackError::InvalidHuffman);
            };
            if sym == EOS {
                return Err(HpackError::InvalidHuffman);
            }
            out.push(sym as u8);
            acc <<= len;
            nbits -= len;
        }
    }
    // The last bits: a symbol wherever a whole code fits in what is left, then padding.
    // Codes are prefix-free, so a match no longer than the real bits is a real symbol; fewer
    // bits than any code they begin means what is left must be padding.
    while let Some((sym, len)) = symbol(acc, nbits) {
        if sym == EOS {
            return Err(HpackError::InvalidHuffman);
        }
        out.push(sym as u8);
        acc <<= len;
        nbits -= len;
    }
    if nbits > 7 || acc != (!0u64).checked_shl(64 - nbits).unwrap_or(0) {
        return Err(HpackError::InvalidHuffman);
    }
    Ok(out)
}

/// The symbol whose code is at the top of `acc`, if one fits in the `nbits` real bits.
#[inline]
fn symbol(acc: u64, nbits: u32) -> Option<(u16, u32)> {
    let short = SHORT[(acc >> 56) as usize];
    let len = u32::from(short >> 9);
    if short != 0 && len <= nbits {
        Some((short & 0x1ff, len))
    } else {
        long_symbol(acc, nbits)
    }
}

/// The symbol of a code longer than 8 bits at the top of `acc` (canonical decoding, RFC 7541
/// Appendix B is canonical), if one fits in the `nbits` real bits.
fn long_symbol(acc: u64, nbits: u32) -> Option<(u16, u32)> {
    for len in 9..=(MAX_LEN as u32).min(nbits) {
        let code = (acc >> (64 - len)) as u32;
        let (first, count, offset) = (
            FIRST[len as usize],
            COUNT[len as usize],
            OFFSET[len as usize],
        );
        if count > 0 && code >= first && code - first < count {
            let sym = SORTED.get((offset + (code - first)) as usize).copied()?;
            return Some((sym, len));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn code_is_complete() {
        // Kraft sum of exactly 1: no gaps, no overlaps.
        let sum: u64 = LENGTHS
            .iter()
            .map(|&l| 1u64 << (MAX_LEN - l as usize))
            .sum();
        assert_eq!(sum, 1u64 << MAX_LEN);
    }

    #[test]
    fn codes_match_appendix_b_samples() {
        // (symbol, code, length) spot checks from RFC 7541 Appendix B, spread over the table.
        let samples: [(usize, u32, u8); 24] = [
            (0, 0x1ff8, 13),
            (1, 0x7fffd8, 23),
            (9, 0xffffea, 24),
            (10, 0x3ffffffc, 30),
            (22, 0x3ffffffe, 30),
            (31, 0xffffffb, 28),
            (b' ' as usize, 0x14, 6),
            (b'&' as usize, 0xf8, 8),
            (b'0' as usize, 0x0, 5),
            (b':' as usize, 0x5c, 7),
            (b'<' as usize, 0x7ffc, 15),
            (b'X' as usize, 0xfc, 8),
            (b'\\' as usize, 0x7fff0, 19),
            (b'a' as usize, 0x3, 5),
            (b'z' as usize, 0x7b, 7),
            (b'~' as usize, 0x1ffd, 13),
            (127, 0xffffffc, 28),
            (128, 0xfffe6, 20),
            (153, 0x1fffdc, 21),
            (199, 0x1ffffec, 25),
            (203, 0x7ffffde, 27),
            (220, 0xffffffd, 28),
            (255, 0x3ffffee, 26),
            (256, 0x3fffffff, 30),
        ];
        for (sym, code, len) in samples {
            assert_eq!((CODES[sym], LENGTHS[sym]), (code, len), "symbol {sym}");
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_strings() {
        let cases = [
            ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
            ("no-cache", "a8eb 1064 9cbf"),
            ("custom-key", "25a8 49e9 5ba9 7d7f"),
            ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
            ("302", "6402"),
            ("307", "640e ff"),
            ("private", "aec3 771a 4b"),
            ("gzip", "9bd9 ab"),
            (
                "Mon, 21 Oct 2013 20:13:21 GMT",
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
            ),
            (
                "https://www.example.com",
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
            ),
            (
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 \
                 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ),
        ];
        for (plain, coded) in cases {
            let coded = unhex(coded);
            let mut out = Vec::new();
            encode(plain.as_bytes(), &mut out);
            assert_eq!(out, coded, "{plain}");
            assert_eq!(encoded_len(plain.as_bytes()), coded.len());
            assert_eq!(decode(&coded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn padding_rules() {
        // "0" is 00000; padded with 111 it is valid.
        assert_eq!(decode(&[0b0000_0111]).unwrap(), b"0");
        // Padding that is not all ones.
        assert_eq!(decode(&[0b0000_0110]), Err(HpackError::InvalidHuffman));
        // A full byte of padding (8 bits) after a complete symbol.
        assert_eq!(
            decode(&[0b0000_0111, 0xff]),
            Err(HpackError::InvalidHuffman)
        );
        // EOS itself (30 ones) padded to 32 bits.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(HpackError::InvalidHuffman)
        );
        // Empty input is the empty string.
        assert_eq!(decode(&[]).unwrap(), b"");
    }

    /// The plain bit-at-a-time canonical decoder the table-driven one must agree with.
    fn decode_bitwise(src: &[u8]) -> Result<Vec<u8>, HpackError> {
        let mut out = Vec::new();
        let (mut acc, mut len) = (0u32, 0usize);
        for &byte in src {
            for shift in (0..8).rev() {
                acc = (acc << 1) | u32::from((byte >> shift) & 1);
                len += 1;
                if len > MAX_LEN {
                    return Err(HpackError::InvalidHuffman);
                }
                let (first, count) = (FIRST[len], COUNT[len]);
                if count > 0 && acc >= first && acc - first < count {
                    let sym = SORTED[(OFFSET[len] + (acc - first)) as usize];
                    if sym == EOS {
                        return Err(HpackError::InvalidHuffman);
                    }
                    out.push(sym as u8);
                    acc = 0;
                    len = 0;
                }
            }
        }
        if len > 7 || acc != (1u32 << len) - 1 {
            return Err(HpackError::InvalidHuffman);
        }
        Ok(out)
    }

    #[test]
    fn every_symbol_decodes_alone_and_in_long_runs() {
        for sym in 0u8..=255 {
            let data = vec![sym; 40];
            let mut coded = Vec::new();
            encode(&data, &mut coded);
            assert_eq!(decode(&coded).unwrap(), data, "symbol {sym}");
            let mut one = Vec::new();
            encode(&[sym], &mut one);
            assert_eq!(decode(&one).unwrap(), vec![sym], "symbol {sym}");
        }
    }

    proptest! {
        #[test]
        fn matches_the_bitwise_decoder(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode(&data), decode_bitwise(&data));
        }

        #[test]
        fn matches_the_bitwise_decoder_on_valid_codes(
            data in proptest::collection::vec(any::<u8>(), 0..100),
            cut in 0usize..8,
        ) {
            // Valid codes with their tail damaged: padding errors and EOS prefixes.
            let mut coded = Vec::new();
            encode(&data, &mut coded);
            let keep = coded.len().saturating_sub(cut % 2);
            coded.truncate(keep);
            if cut >= 4 {
                coded.push(0xff);
            }
            prop_assert_eq!(decode(&coded), decode_bitwise(&coded));
        }

        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            encode(&data, &mut out);
            prop_assert_eq!(out.len(), encoded_len(&data));
            prop_assert_eq!(decode(&out).unwrap(), data);
        }

        #[test]
        fn round_trip_of_header_text(data in "[ -~]{0,200}") {
            // Printable ASCII: the short codes the two-symbol table decodes.
            let mut out = Vec::new();
            encode(data.as_bytes(), &mut out);
            prop_assert_eq!(decode(&out), decode_bitwise(&out));
            prop_assert_eq!(decode(&out).unwrap(), data.as_bytes());
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&data);
        }
    }
}
