//! Frame layer tests: known bytes, the per-type rules, and encode/parse round trips.

use super::*;
use proptest::prelude::*;

fn roundtrip(f: &Frame) {
    let b = f.to_bytes();
    let (g, n) = decode(&b, MAX_MAX_FRAME_SIZE).unwrap().unwrap();
    assert_eq!(n, b.len());
    assert_eq!(&g, f);
}

#[test]
fn known_bytes() {
    let f = Frame::Ping {
        ack: true,
        data: *b"abcdefgh",
    };
    assert_eq!(
        &f.to_bytes()[..],
        b"\x00\x00\x08\x06\x01\x00\x00\x00\x00abcdefgh"
    );
    let g = Frame::GoAway {
        last_stream_id: 7,
        code: ErrorCode::ENHANCE_YOUR_CALM,
        debug: Bytes::from_static(b"{}"),
    };
    assert_eq!(
        &g.to_bytes()[..],
        b"\x00\x00\x0a\x07\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x0b{}"
    );
}

#[test]
fn header_check_before_payload() {
    // A header announcing 2^24-1 bytes is refused as soon as the 9 header bytes are there.
    let buf = [0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1];
    let e = decode(&buf, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
    assert_eq!(e.code, ErrorCode::FRAME_SIZE_ERROR);
    assert_eq!(decode(&buf[..8], DEFAULT_MAX_FRAME_SIZE).unwrap(), None);
}

#[test]
fn padding_rules() {
    // PADDED DATA whose pad length equals the payload length (RFC 9113 6.1).
    let buf = [0, 0, 3, 0, flag::PADDED, 0, 0, 0, 1, 3, 0, 0];
    let e = decode(&buf, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
    assert_eq!(e.code, ErrorCode::PROTOCOL_ERROR);
    // One octet less is fine: no data, two octets of padding.
    let buf = [0, 0, 3, 0, flag::PADDED, 0, 0, 0, 1, 2, 0, 0];
    let (f, _) = decode(&buf, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
    assert!(matches!(f, Frame::Data { ref data, pad: Some(2), .. } if data.is_empty()));
    // PADDED HEADERS without even the pad-length octet.
    let buf = [0, 0, 0, kind::HEADERS, flag::PADDED, 0, 0, 0, 1];
    assert!(decode(&buf, DEFAULT_MAX_FRAME_SIZE).is_err());
    let buf = [0, 0, 3, 0, flag::PADDED, 0, 0, 0, 1, 1, b'x', 0];
    let (f, _) = decode(&buf, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
    assert_eq!(
        f,
        Frame::Data {
            stream_id: 1,
            end_stream: false,
            data: Bytes::from_static(b"x"),
            pad: Some(1)
        }
    );
}

#[test]
fn fixed_lengths_and_stream_zero() {
    let cases: &[(&[u8], ErrorCode, ErrorScope)] = &[
        (
            &[0, 0, 4, kind::PRIORITY, 0, 0, 0, 0, 3, 0, 0, 0, 1],
            ErrorCode::FRAME_SIZE_ERROR,
            ErrorScope::Stream(3),
        ),
        (
            &[0, 0, 3, kind::RST_STREAM, 0, 0, 0, 0, 1, 0, 0, 0],
            ErrorCode::FRAME_SIZE_ERROR,
            ErrorScope::Connection,
        ),
        (
            &[0, 0, 0, kind::SETTINGS, 0, 0, 0, 0, 1],
            ErrorCode::PROTOCOL_ERROR,
            ErrorScope::Connection,
        ),
        (
            &[0, 0, 6, kind::SETTINGS, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
            ErrorCode::FRAME_SIZE_ERROR,
            ErrorScope::Connection,
        ),
        (
            &[0, 0, 0, kind::DATA, 0, 0, 0, 0, 0],
            ErrorCode::PROTOCOL_ERROR,
            ErrorScope::Connection,
        ),
        (
            &[0, 0, 4, kind::PING, 0, 0, 0, 0, 0, 1, 2, 3, 4],
            ErrorCode::FRAME_SIZE_ERROR,
            ErrorScope::Connection,
        ),
    ];
    for (bytes, code, scope) in cases {
        let e = decode(bytes, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
        assert_eq!((e.code, e.scope), (*code, *scope), "{bytes:?}");
    }
}

#[test]
fn reserved_bit_ignored() {
    let buf = [
        0,
        0,
        4,
        kind::WINDOW_UPDATE,
        0,
        0x80,
        0,
        0,
        1,
        0x80,
        0,
        0,
        5,
    ];
    let (f, _) = decode(&buf, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
    assert_eq!(
        f,
        Frame::WindowUpdate {
            stream_id: 1,
            increment: 5
        }
    );
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn arb_prio() -> impl Strategy<Value = PrioritySpec> {
    (any::<bool>(), 0u32..0x8000_0000, any::<u8>()).prop_map(|(exclusive, dependency, weight)| {
        PrioritySpec {
            exclusive,
            dependency,
            weight,
        }
    })
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let sid = 1u32..0x8000_0000;
    prop_oneof![
        (
            sid.clone(),
            any::<bool>(),
            arb_bytes(64),
            any::<Option<u8>>()
        )
            .prop_map(|(stream_id, end_stream, data, pad)| Frame::Data {
                stream_id,
                end_stream,
                data,
                pad
            }),
        (
            sid.clone(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(arb_prio()),
            arb_bytes(64),
            any::<Option<u8>>()
        )
            .prop_map(
                |(stream_id, end_stream, end_headers, priority, fragment, pad)| {
                    Frame::Headers {
                        stream_id,
                        end_stream,
                        end_headers,
                        priority,
                        fragment,
                        pad,
                    }
                }
            ),
        (sid.clone(), arb_prio()).prop_map(|(stream_id, spec)| Frame::Priority { stream_id, spec }),
        (sid.clone(), any::<u32>()).prop_map(|(stream_id, c)| Frame::RstStream {
            stream_id,
            code: ErrorCode(c)
        }),
        proptest::collection::vec((any::<u16>(), any::<u32>()), 0..8)
            .prop_map(|params| Frame::Settings { ack: false, params }),
        Just(Frame::Settings {
            ack: true,
            params: vec![]
        }),
        (
            sid.clone(),
            0u32..0x8000_0000,
            any::<bool>(),
            arb_bytes(32),
            any::<Option<u8>>()
        )
            .prop_map(|(stream_id, promised_id, end_headers, fragment, pad)| {
                Frame::PushPromise {
                    stream_id,
                    promised_id,
                    end_headers,
                    fragment,
                    pad,
                }
            }),
        (any::<bool>(), any::<[u8; 8]>()).prop_map(|(ack, data)| Frame::Ping { ack, data }),
        (0u32..0x8000_0000, any::<u32>(), arb_bytes(32)).prop_map(|(l, c, debug)| {
            Frame::GoAway {
                last_stream_id: l,
                code: ErrorCode(c),
                debug,
            }
        }),
        (0u32..0x8000_0000, 0u32..0x8000_0000).prop_map(|(stream_id, increment)| {
            Frame::WindowUpdate {
                stream_id,
                increment,
            }
        }),
        (sid.clone(), any::<bool>(), arb_bytes(64)).prop_map(
            |(stream_id, end_headers, fragment)| Frame::Continuation {
                stream_id,
                end_headers,
                fragment
            }
        ),
        (0x0au8..=0xff, any::<u8>(), 0u32..0x8000_0000, arb_bytes(32)).prop_map(
            |(kind, flags, stream_id, payload)| Frame::Unknown {
                kind,
                flags,
                stream_id,
                payload
            }
        ),
    ]
}

proptest! {
    #[test]
    fn encode_parse_roundtrip(f in arb_frame()) {
        roundtrip(&f);
    }

    #[test]
    fn parser_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..200), max in 0u32..70_000) {
        let _ = decode(&buf, max);
    }

    #[test]
    fn truncated_frame_needs_more(f in arb_frame(), cut in 0usize..200) {
        let b = f.to_bytes();
        if cut < b.len() {
            prop_assert_eq!(decode(&b[..cut], MAX_MAX_FRAME_SIZE).unwrap(), None);
        }
    }
}
