//! RFC 7541 Appendix C vectors and round-trip properties for the whole HPACK module.

use super::*;
use bytes::BytesMut;
use proptest::prelude::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

type Pairs<'a> = &'a [(&'a str, &'a str)];

/// Decodes `block`, then checks the header list, the dynamic table (newest first) and its size.
fn check_step(dec: &mut Decoder, block: &str, headers: Pairs, table: Pairs, size: usize) {
    let fields = dec.decode(&unhex(block), usize::MAX).unwrap();
    let got: Vec<(&[u8], &[u8])> = fields.iter().map(|f| (&f.name[..], &f.value[..])).collect();
    let want: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    assert_eq!(got, want, "header list of {block}");
    let got: Vec<(&[u8], &[u8])> = dec.table().iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let want: Vec<(&[u8], &[u8])> = table
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    assert_eq!(got, want, "dynamic table after {block}");
    assert_eq!(dec.table_size(), size, "table size after {block}");
}

#[test]
fn c2_1_literal_with_indexing() {
    let mut dec = Decoder::new(4096);
    let block = "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572";
    let fields = dec.decode(&unhex(block), usize::MAX).unwrap();
    assert_eq!(
        fields[0].representation,
        Representation::IncrementalIndexing
    );
    assert!(!fields[0].name_indexed && !fields[0].huffman);
    let mut dec = Decoder::new(4096);
    let h = [("custom-key", "custom-header")];
    check_step(&mut dec, block, &h, &h, 55);
}

#[test]
fn c2_2_literal_without_indexing() {
    let mut dec = Decoder::new(4096);
    let block = "040c 2f73 616d 706c 652f 7061 7468";
    let fields = dec.decode(&unhex(block), usize::MAX).unwrap();
    assert_eq!(fields[0].representation, Representation::WithoutIndexing);
    assert!(fields[0].name_indexed);
    let mut dec = Decoder::new(4096);
    check_step(&mut dec, block, &[(":path", "/sample/path")], &[], 0);
}

#[test]
fn c2_3_literal_never_indexed() {
    let mut dec = Decoder::new(4096);
    let block = "1008 7061 7373 776f 7264 0673 6563 7265 74";
    let fields = dec.decode(&unhex(block), usize::MAX).unwrap();
    assert_eq!(fields[0].representation, Representation::NeverIndexed);
    assert!(!fields[0].name_indexed);
    let mut dec = Decoder::new(4096);
    check_step(&mut dec, block, &[("password", "secret")], &[], 0);
}

#[test]
fn c2_4_indexed() {
    let mut dec = Decoder::new(4096);
    let fields = dec.decode(&unhex("82"), usize::MAX).unwrap();
    assert_eq!(fields[0].representation, Representation::Indexed);
    let mut dec = Decoder::new(4096);
    check_step(&mut dec, "82", &[(":method", "GET")], &[], 0);
}

const REQ1: Pairs = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: Pairs = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: Pairs = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQ_T1: Pairs = &[(":authority", "www.example.com")];
const REQ_T2: Pairs = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQ_T3: Pairs = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

const C3: [&str; 3] = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];
const C4: [&str; 3] = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];

#[test]
fn c3_requests_without_huffman() {
    let mut dec = Decoder::new(4096);
    check_step(&mut dec, C3[0], REQ1, REQ_T1, 57);
    check_step(&mut dec, C3[1], REQ2, REQ_T2, 110);
    check_step(&mut dec, C3[2], REQ3, REQ_T3, 164);
}

#[test]
fn c4_requests_with_huffman() {
    let mut dec = Decoder::new(4096);
    check_step(&mut dec, C4[0], REQ1, REQ_T1, 57);
    check_step(&mut dec, C4[1], REQ2, REQ_T2, 110);
    check_step(&mut dec, C4[2], REQ3, REQ_T3, 164);
    let mut dec = Decoder::new(4096);
    let fields = dec.decode(&unhex(C4[0]), usize::MAX).unwrap();
    assert!(fields[3].huffman && fields[3].name_indexed);
}

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOC: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

/// One response step: header list, dynamic table afterwards (newest first), table size.
type Step = (
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, &'static str)>,
    usize,
);

fn resp_expectations() -> [Step; 3] {
    [
        (
            vec![
                (":status", "302"),
                ("cache-control", "private"),
                ("date", DATE1),
                ("location", LOC),
            ],
            vec![
                ("location", LOC),
                ("date", DATE1),
                ("cache-control", "private"),
                (":status", "302"),
            ],
            222,
        ),
        (
            vec![
                (":status", "307"),
                ("cache-control", "private"),
                ("date", DATE1),
                ("location", LOC),
            ],
            vec![
                (":status", "307"),
                ("location", LOC),
                ("date", DATE1),
                ("cache-control", "private"),
            ],
            222,
        ),
        (
            vec![
                (":status", "200"),
                ("cache-control", "private"),
                ("date", DATE2),
                ("location", LOC),
                ("content-encoding", "gzip"),
                ("set-cookie", COOKIE),
            ],
            vec![
                ("set-cookie", COOKIE),
                ("content-encoding", "gzip"),
                ("date", DATE2),
            ],
            215,
        ),
    ]
}

const C5: [&str; 3] = [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a \
     3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 \
     677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 \
     553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
];
const C6: [&str; 3] = [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e \
     919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 \
     821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed \
     4ee5 b106 3d50 07",
];

#[test]
fn c5_responses_without_huffman_with_eviction() {
    let mut dec = Decoder::new(256);
    for (block, (h, t, size)) in C5.iter().zip(resp_expectations()) {
        check_step(&mut dec, block, &h, &t, size);
    }
}

#[test]
fn c6_responses_with_huffman_with_eviction() {
    let mut dec = Decoder::new(256);
    for (block, (h, t, size)) in C6.iter().zip(resp_expectations()) {
        check_step(&mut dec, block, &h, &t, size);
    }
}

fn rep_fields(list: Pairs, reps: &[Representation]) -> Vec<(Bytes, Bytes, Representation)> {
    list.iter()
        .zip(reps)
        .map(|((n, v), r)| (Bytes::from(n.to_string()), Bytes::from(v.to_string()), *r))
        .collect()
}

#[test]
fn encoder_reproduces_c4_and_c6_byte_exactly() {
    use Representation::{IncrementalIndexing as Inc, Indexed as Idx};
    let mut enc = Encoder::new();
    let reps: [&[Representation]; 3] = [
        &[Idx, Idx, Idx, Inc],
        &[Idx, Idx, Idx, Idx, Inc],
        &[Idx, Idx, Idx, Idx, Inc],
    ];
    for ((list, reps), want) in [REQ1, REQ2, REQ3].iter().zip(reps).zip(C4) {
        let mut dst = BytesMut::new();
        enc.encode_with(&rep_fields(list, reps), &mut dst);
        assert_eq!(&dst[..], &unhex(want)[..]);
    }

    let mut enc = Encoder::new();
    enc.set_max_table_size(256);
    let mut first = true;
    let reps: [&[Representation]; 3] = [
        &[Inc, Inc, Inc, Inc],
        &[Inc, Idx, Idx, Idx],
        &[Idx, Idx, Inc, Idx, Inc, Inc],
    ];
    for ((h, _, size), (reps, want)) in resp_expectations().iter().zip(reps.iter().zip(C6)) {
        let mut dst = BytesMut::new();
        enc.encode_with(&rep_fields(h, reps), &mut dst);
        let mut want = unhex(want);
        if first {
            // Our encoder announces the reduced table size first: 0x3f 0xe1 0x01 = update to 256.
            want.splice(0..0, [0x3f, 0xe1, 0x01]);
            first = false;
        }
        assert_eq!(&dst[..], &want[..]);
        assert_eq!(enc.table().size(), *size);
    }
}

#[test]
fn default_policy_indexes_repeating_response_fields() {
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    let resp: [(&[u8], &[u8]); 3] = [
        (b":status", b"410"),
        (b"content-type", b"application/json"),
        (b"apns-id", b"0b0d2bd0-2b0a-4ad1-94f5-2bd2ac2bd0c1"),
    ];
    let mut reps = Vec::new();
    for _ in 0..2 {
        let mut dst = BytesMut::new();
        enc.encode(resp.iter().copied(), &mut dst);
        let fields = dec.decode(&dst, usize::MAX).unwrap();
        let got: Vec<(&[u8], &[u8])> = fields.iter().map(|f| (&f.name[..], &f.value[..])).collect();
        assert_eq!(got, resp.to_vec());
        reps.push(fields.iter().map(|f| f.representation).collect::<Vec<_>>());
    }
    use Representation::*;
    assert_eq!(
        reps[0],
        vec![IncrementalIndexing, IncrementalIndexing, WithoutIndexing]
    );
    assert_eq!(reps[1], vec![Indexed, Indexed, WithoutIndexing]);
    // :status 200 is in the static table.
    let mut dst = BytesMut::new();
    enc.encode([(&b":status"[..], &b"200"[..])], &mut dst);
    assert_eq!(&dst[..], &[0x88]);
}

#[test]
fn header_list_limit_bounds_a_bomb_and_keeps_state() {
    let mut dec = Decoder::new(4096);
    // One small entry, then 4000 one-byte references to it: ~170 KB of headers from 4 KB.
    let mut block = unhex("4001 6101 62"); // a: b, incremental indexing
    block.extend_from_slice(&[0xbe; 4000]);
    let err = dec.decode(&block, 16 * 1024).unwrap_err();
    assert_eq!(
        err,
        HpackError::HeaderListTooLarge {
            size: 4001 * 34,
            max: 16 * 1024
        }
    );
    assert!(!err.is_connection_error());
    // The table still holds the entry, so the next block referencing it decodes.
    assert_eq!(dec.table_size(), 34);
    let fields = dec.decode(&[0xbe], 16 * 1024).unwrap();
    assert_eq!(
        (&fields[0].name[..], &fields[0].value[..]),
        (&b"a"[..], &b"b"[..])
    );
    // Exactly at the limit is allowed.
    assert_eq!(dec.decode(&[0xbe, 0xbe], 68).unwrap().len(), 2);
    assert!(dec.decode(&[0xbe, 0xbe], 67).is_err());
}

#[test]
fn table_size_update_rules() {
    let mut dec = Decoder::new(4096);
    assert_eq!(
        dec.decode(&unhex("3fe2 1f"), usize::MAX), // update to 4097
        Err(HpackError::TableSizeUpdateTooLarge {
            requested: 4097,
            max: 4096
        })
    );
    let mut dec = Decoder::new(4096);
    assert_eq!(
        dec.decode(&unhex("82 20"), usize::MAX),
        Err(HpackError::TableSizeUpdateNotAtStart)
    );
    // Two updates at the start are fine; update to 0 empties the table.
    let mut dec = Decoder::new(4096);
    dec.decode(&unhex("4001 6101 62"), usize::MAX).unwrap();
    assert_eq!(dec.table_size(), 34);
    dec.decode(&unhex("20 3fe1 1f 82"), usize::MAX).unwrap();
    assert_eq!(dec.table_size(), 0);
    // Lowering our setting requires the peer to announce a smaller table first.
    dec.set_max_table_size(100);
    assert_eq!(
        dec.decode(&[0x82], usize::MAX),
        Err(HpackError::TableSizeUpdateMissing)
    );
    let mut ok = Vec::new();
    encode_integer(100, 5, 0x20, &mut ok);
    ok.push(0x82);
    assert_eq!(dec.decode(&ok, usize::MAX).unwrap().len(), 1);
}

#[test]
fn malformed_blocks() {
    let mut dec = Decoder::new(4096);
    assert_eq!(
        dec.decode(&[0x80], usize::MAX),
        Err(HpackError::IndexOutOfRange(0))
    );
    assert_eq!(
        dec.decode(&[0xbe], usize::MAX),
        Err(HpackError::IndexOutOfRange(62))
    );
    assert_eq!(
        dec.decode(&[0x7e, 0x00], usize::MAX),
        Err(HpackError::IndexOutOfRange(62))
    );
    assert_eq!(dec.decode(&[0xff], usize::MAX), Err(HpackError::Truncated));
    assert_eq!(
        dec.decode(&unhex("ff ff ff ff ff ff 01"), usize::MAX),
        Err(HpackError::IntegerOverflow)
    );
    assert_eq!(
        dec.decode(&unhex("40 05 61"), usize::MAX),
        Err(HpackError::StringTooLong {
            len: 5,
            available: 1
        })
    );
    // A 2^32-byte string must fail before any allocation.
    assert_eq!(
        dec.decode(&unhex("40 7f ff ff ff ff 0f"), usize::MAX),
        Err(HpackError::IntegerOverflow)
    );
    assert_eq!(
        dec.decode(&unhex("40 81 ff 00"), usize::MAX),
        Err(HpackError::InvalidHuffman)
    );
    assert_eq!(
        dec.decode(&unhex("40 01"), usize::MAX),
        Err(HpackError::StringTooLong {
            len: 1,
            available: 0
        })
    );
    assert_eq!(
        dec.decode(&unhex("40"), usize::MAX),
        Err(HpackError::Truncated)
    );
    assert_eq!(
        dec.decode(&unhex("82 00 01 61"), usize::MAX),
        Err(HpackError::Truncated)
    );
}

#[test]
fn encoder_announces_smallest_then_final_size() {
    let mut enc = Encoder::new();
    enc.set_max_table_size(0);
    enc.set_max_table_size(1000);
    let mut dst = BytesMut::new();
    enc.encode([(&b"content-type"[..], &b"x"[..])], &mut dst);
    let mut want = vec![0x20];
    encode_integer(1000, 5, 0x20, &mut want);
    assert_eq!(&dst[..want.len()], &want[..]);
    let mut dec = Decoder::new(4096);
    dec.decode(&dst, usize::MAX).unwrap();
    assert_eq!(dec.table_size(), enc.table().size());
    // Same size again: nothing to announce.
    enc.set_max_table_size(1000);
    let mut dst = BytesMut::new();
    enc.encode([(&b":status"[..], &b"200"[..])], &mut dst);
    assert_eq!(&dst[..], &[0x88]);
}

#[test]
fn representation_serializes_snake_case() {
    let json = serde_json::to_string(&[
        Representation::Indexed,
        Representation::IncrementalIndexing,
        Representation::WithoutIndexing,
        Representation::NeverIndexed,
    ])
    .unwrap();
    assert_eq!(
        json,
        r#"["indexed","incremental_indexing","without_indexing","never_indexed"]"#
    );
}

#[test]
fn integer_round_trip_edges() {
    for prefix in 1..=8u8 {
        for v in [
            0usize,
            1,
            30,
            31,
            126,
            127,
            128,
            254,
            255,
            256,
            1337,
            65535,
            u32::MAX as usize,
        ] {
            let mut buf = Vec::new();
            encode_integer(v, prefix, 0, &mut buf);
            let mut pos = 0;
            assert_eq!(
                decode_integer(&buf, &mut pos, prefix),
                Ok(v),
                "prefix {prefix} value {v}"
            );
            assert_eq!(pos, buf.len());
        }
    }
    // RFC 7541 C.1.2: 1337 with a 5-bit prefix.
    let mut buf = Vec::new();
    encode_integer(1337, 5, 0, &mut buf);
    assert_eq!(buf, vec![0x1f, 0x9a, 0x0a]);
}

fn arb_rep() -> impl Strategy<Value = Representation> {
    prop_oneof![
        Just(Representation::Indexed),
        Just(Representation::IncrementalIndexing),
        Just(Representation::WithoutIndexing),
        Just(Representation::NeverIndexed),
    ]
}

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        // Names and values the tables know, so indexed forms are exercised.
        prop::sample::select(vec![
            ":status",
            ":path",
            "content-type",
            "apns-id",
            "authorization",
            "200",
            "",
            "gzip, deflate",
        ])
        .prop_map(|s| Bytes::from(s.to_string())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from),
    ]
}

proptest! {
    #[test]
    fn encode_decode_round_trip(
        table_size in prop_oneof![Just(0usize), Just(64), Just(256), Just(4096)],
        blocks in prop::collection::vec(
            prop::collection::vec((arb_bytes(), arb_bytes(), arb_rep()), 0..12), 1..5),
    ) {
        let mut enc = Encoder::new();
        enc.set_max_table_size(table_size);
        let mut dec = Decoder::new(4096);
        for fields in &blocks {
            let mut dst = BytesMut::new();
            let report = enc.encode_reporting(fields, &mut dst);
            let decoded = dec.decode(&dst, usize::MAX).unwrap();
            prop_assert_eq!(decoded.len(), fields.len());
            for ((f, (n, v, rep)), e) in decoded.iter().zip(fields).zip(&report) {
                prop_assert_eq!(&f.name, n);
                prop_assert_eq!(&f.value, v);
                prop_assert_eq!(f.representation, e.representation);
                prop_assert_eq!(f.name_indexed, e.name_indexed);
                prop_assert_eq!(f.huffman, e.huffman);
                if *rep != Representation::Indexed {
                    prop_assert_eq!(f.representation, *rep);
                }
            }
            prop_assert_eq!(dec.table_size(), enc.table().size());
        }
    }

    #[test]
    fn decoder_never_panics(
        blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..4),
        limit in 0usize..2000,
    ) {
        let mut dec = Decoder::new(256);
        for b in &blocks {
            let _ = dec.decode(b, limit);
            prop_assert!(dec.table_size() <= 256);
        }
    }

    #[test]
    fn decoder_survives_mutated_valid_blocks(
        fields in prop::collection::vec((arb_bytes(), arb_bytes(), arb_rep()), 1..8),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut enc = Encoder::new();
        let mut dst = BytesMut::new();
        enc.encode_with(&fields, &mut dst);
        let mut block = dst.to_vec();
        for (i, b) in flips {
            let i = i.index(block.len());
            block[i] ^= b;
        }
        let mut dec = Decoder::new(4096);
        let _ = dec.decode(&block, 8192);
        prop_assert!(dec.table_size() <= 4096);
    }

    #[test]
    fn indexed_requests_hit_existing_entries(value in "[a-z0-9]{1,20}") {
        let mut enc = Encoder::new();
        let mut dec = Decoder::new(4096);
        let field = (Bytes::from_static(b"apns-id"), Bytes::from(value), Representation::Indexed);
        let mut dst = BytesMut::new();
        enc.encode_with(std::slice::from_ref(&field), &mut dst);
        prop_assert_eq!(dec.decode(&dst, usize::MAX).unwrap()[0].representation,
            Representation::IncrementalIndexing);
        let mut dst = BytesMut::new();
        enc.encode_with(&[field.clone(), field], &mut dst);
        prop_assert_eq!(&dst[..], &[0xbe, 0xbe]);
        let got = dec.decode(&dst, usize::MAX).unwrap();
        prop_assert!(got.iter().all(|f| f.representation == Representation::Indexed));
    }
}

#[test]
fn repeated_authorization_literals_decode_each_time_correctly() {
    // The decoder remembers the last authorization literal; it must never answer a different
    // wire string (or the same bytes with the other Huffman flag) from that memory.
    let block = |value: &[u8], huffman: bool| {
        let mut out = vec![0x1f, 0x08]; // literal never indexed, name index 23 (authorization)
        if huffman {
            let mut coded = Vec::new();
            huffman::encode(value, &mut coded);
            out.push(0x80 | coded.len() as u8);
            out.extend_from_slice(&coded);
        } else {
            out.push(value.len() as u8);
            out.extend_from_slice(value);
        }
        out
    };
    let mut dec = Decoder::default();
    let cases: [(&[u8], bool); 6] = [
        (b"bearer aaa.bbb.ccc", true),
        (b"bearer aaa.bbb.ccc", true),
        (b"bearer aaa.bbb.ccd", true),
        (b"bearer aaa.bbb.ccd", false),
        (b"bearer aaa.bbb.ccd", true),
        (b"bearer aaa.bbb.ccc", false),
    ];
    for (value, huffman) in cases {
        let fields = dec.decode(&block(value, huffman), 1 << 16).unwrap();
        assert_eq!(&fields[0].name[..], b"authorization");
        assert_eq!(&fields[0].value[..], value);
        assert_eq!(fields[0].huffman, huffman);
        assert_eq!(fields[0].representation, Representation::NeverIndexed);
    }
    // Raw bytes that happen to equal an earlier Huffman code, now sent as a plain literal.
    let mut coded = Vec::new();
    huffman::encode(b"bearer x", &mut coded);
    dec.decode(&block(b"bearer x", true), 1 << 16).unwrap();
    let mut plain = vec![0x1f, 0x08, coded.len() as u8];
    plain.extend_from_slice(&coded);
    let fields = dec.decode(&plain, 1 << 16).unwrap();
    assert_eq!(&fields[0].value[..], &coded[..]);
}
