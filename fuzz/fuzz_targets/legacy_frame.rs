//! Legacy frame decode: `check`, `parse` and `peek` agree on every input, and a frame arriving in
//! pieces reads as incomplete until it is whole, then as the same frame.
#![no_main]
use apnsim::legacy::frame::{check, parse, peek, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let checked = check(data, &limits);
    let parsed = parse(&bytes::Bytes::copy_from_slice(data), &limits);
    let peeked = peek(data, &limits);
    match &checked {
        Ok(len) => {
            assert!(*len <= data.len());
            assert!(matches!(peeked, Ok(Some(_))), "check accepted, peek did not");
            // Chunked == whole: every strict prefix is incomplete; more bytes change nothing.
            for cut in [0, 1, 5, len / 2, len.saturating_sub(1)] {
                if cut < *len {
                    let prefix = check(&data[..cut], &limits);
                    assert!(prefix.is_err_and(|e| e.is_incomplete()), "prefix {cut}: {prefix:?}");
                }
            }
            let mut longer = data.to_vec();
            longer.extend_from_slice(&[0xAA; 7]);
            assert_eq!(check(&longer, &limits), Ok(*len));
        }
        Err(e) if e.is_incomplete() => {
            assert!(matches!(peeked, Ok(None)), "check: incomplete, peek: {peeked:?}");
            assert!(parsed.is_err());
        }
        Err(_) => {
            assert!(peeked.is_err(), "check found an error, peek did not");
            assert!(parsed.is_err());
        }
    }
});
