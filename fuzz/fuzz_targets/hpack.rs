//! HPACK decode + round trip: any header block decodes or fails cleanly; what decodes, encoded
//! again by our encoder, decodes to the same fields.
#![no_main]
use apnsim::http2::hpack::{Decoder, Encoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut dec = Decoder::new(4096);
    let Ok(fields) = dec.decode(data, 64 * 1024) else {
        return;
    };
    let mut enc = Encoder::new();
    let mut out = bytes::BytesMut::new();
    enc.encode(
        fields.iter().map(|f| (&f.name[..], &f.value[..])),
        &mut out,
    );
    let mut dec2 = Decoder::new(4096);
    let again = dec2.decode(&out, usize::MAX).expect("our own encoding decodes");
    assert_eq!(again.len(), fields.len());
    for (a, b) in again.iter().zip(&fields) {
        assert_eq!((&a.name, &a.value), (&b.name, &b.value));
    }
});
