//! `http2::conn::Connection` fed the input in chunks (sizes from the input), answering requests,
//! resetting streams and running timers as the server would: never panics, output stays bounded.
#![no_main]
use apnsim::http2::conn::{ConnConfig, Connection, Event};
use apnsim::http2::frame::ErrorCode;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mut conn = Connection::new(ConnConfig::default());
    conn.send_preface_settings();
    let mut now = Instant::now();
    let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    input.extend_from_slice(rest);
    let chunk = usize::from(ctl % 64) + 1;
    for (i, piece) in input.chunks(chunk).enumerate() {
        conn.recv(piece, now);
        while let Some(ev) = conn.poll_event() {
            if let Event::Request(req) = ev {
                match (i + req.stream_id as usize) % 3 {
                    0 => {
                        let _ = conn.respond(req.stream_id, 200, &[("apns-id", "x")], None);
                    }
                    1 => {
                        let _ = conn.reset_stream(req.stream_id, ErrorCode::REFUSED_STREAM);
                    }
                    _ => {}
                }
            }
        }
        let _ = conn.take_output();
        if ctl & 0x80 != 0 {
            now += Duration::from_secs(u64::from(ctl & 0x3f));
            conn.on_timeout(now);
        }
        if conn.is_closed() {
            break;
        }
    }
    conn.recv_eof();
    while conn.poll_event().is_some() {}
});
