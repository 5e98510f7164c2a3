//! Legacy frames built byte by byte from PROTOCOL.md 1.2–1.4, independently of apnsim's codec,
//! so the tests check the codec against the fact sheet rather than against itself.

/// The payload most tests send.
pub const PAYLOAD: &[u8] = br#"{"aps":{"alert":"hi"}}"#;

/// A 32-byte token of one repeated byte.
pub fn tok(b: u8) -> Vec<u8> {
    vec![b; 32]
}

/// Command 0 (PROTOCOL.md 1.2).
pub fn cmd0(token: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend((token.len() as u16).to_be_bytes());
    v.extend(token);
    v.extend((payload.len() as u16).to_be_bytes());
    v.extend(payload);
    v
}

/// Command 1 (PROTOCOL.md 1.3).
pub fn cmd1(id: u32, expiry: u32, token: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend(id.to_be_bytes());
    v.extend(expiry.to_be_bytes());
    v.extend((token.len() as u16).to_be_bytes());
    v.extend(token);
    v.extend((payload.len() as u16).to_be_bytes());
    v.extend(payload);
    v
}

/// One command-2 item: id, u16 length, data (PROTOCOL.md 1.4).
pub fn item(id: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![id];
    v.extend((data.len() as u16).to_be_bytes());
    v.extend(data);
    v
}

/// A command-2 frame around these items, in this order (malformed ones included).
pub fn cmd2(items: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = items.concat();
    let mut v = vec![2u8];
    v.extend((body.len() as u32).to_be_bytes());
    v.extend(body);
    v
}

/// Command 2 with items 1 to 5 (priority 10).
pub fn framed_full(id: u32, expiry: u32, token: &[u8], payload: &[u8]) -> Vec<u8> {
    cmd2(&[
        item(1, token),
        item(2, payload),
        item(3, &id.to_be_bytes()),
        item(4, &expiry.to_be_bytes()),
        item(5, &[10]),
    ])
}

/// Command 2 with [`PAYLOAD`], expiry 0 and priority 10.
pub fn framed(id: u32, token: &[u8]) -> Vec<u8> {
    framed_full(id, 0, token, PAYLOAD)
}

/// The 6-byte error-response (PROTOCOL.md 1.6).
pub fn error_response(status: u8, id: u32) -> Vec<u8> {
    let mut v = vec![8, status];
    v.extend(id.to_be_bytes());
    v
}
