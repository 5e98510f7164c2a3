//! HTTP/2 frame decode + re-encode: whatever decodes re-encodes to bytes that decode to the same
//! frame.
#![no_main]
use apnsim::http2::frame::{decode, DEFAULT_MAX_FRAME_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((frame, used))) = decode(rest, DEFAULT_MAX_FRAME_SIZE) {
        assert!(used > 0 && used <= rest.len());
        let bytes = frame.to_bytes();
        let (again, n) = decode(&bytes, DEFAULT_MAX_FRAME_SIZE)
            .expect("re-encoded frame decodes")
            .expect("re-encoded frame is complete");
        assert_eq!(n, bytes.len());
        assert_eq!(again, frame);
        rest = &rest[used..];
    }
});
