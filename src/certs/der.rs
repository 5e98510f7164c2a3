//! The DER apnsim reads and writes by hand: a minimal writer for Apple's certificate extensions and
//! PKCS#12 bundles, a bounded tag-length-value reader, and the topic-list extension (PROTOCOL.md 1.9)
//! both ways, side by side so the two cannot drift apart.

// ---------------------------------------------------------------------------------------------
// Writing.

/// Tag-length-value with a definite length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len().saturating_add(10));
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

pub(crate) fn seq(content: &[u8]) -> Vec<u8> {
    tlv(0x30, content)
}

/// SET OF with its members in DER order.
pub(crate) fn set_of(mut members: Vec<Vec<u8>>) -> Vec<u8> {
    members.sort();
    tlv(0x31, &members.concat())
}

pub(crate) fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

pub(crate) fn utf8(s: &str) -> Vec<u8> {
    tlv(0x0c, s.as_bytes())
}

pub(crate) fn bmp(s: &str) -> Vec<u8> {
    let bytes: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    tlv(0x1e, &bytes)
}

pub(crate) fn octets(b: &[u8]) -> Vec<u8> {
    tlv(0x04, b)
}

/// Non-negative INTEGER.
pub(crate) fn uint(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut content = bytes.get(skip..).unwrap_or(&[0]).to_vec();
    if content.first().is_some_and(|b| b & 0x80 != 0) {
        content.insert(0, 0);
    }
    tlv(0x02, &content)
}

pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut content = Vec::new();
    let (a, b) = match arcs {
        [a, b, ..] => (*a, *b),
        _ => (0, 0),
    };
    base128(&mut content, a.saturating_mul(40).saturating_add(b));
    for arc in arcs.iter().skip(2) {
        base128(&mut content, *arc);
    }
    tlv(0x06, &content)
}

fn base128(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        tmp.push(0x80 | (v & 0x7f) as u8);
        v >>= 7;
    }
    tmp.reverse();
    out.extend(tmp);
}

/// `[n] EXPLICIT` context tag around already-encoded content.
pub(crate) fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | (n & 0x1f), content)
}

/// `[n] IMPLICIT` primitive context tag (replaces an OCTET STRING tag).
pub(crate) fn implicit_primitive(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0x80 | (n & 0x1f), content)
}

/// DER body of the .3.6 extension: SEQUENCE of UTF8String topic, SEQUENCE { UTF8String kind } (PROTOCOL.md 1.9).
pub(crate) fn topics_extension(topics: &[(String, String)]) -> Vec<u8> {
    let mut items = Vec::new();
    for (topic, kind) in topics {
        items.extend(utf8(topic));
        items.extend(seq(&utf8(kind)));
    }
    seq(&items)
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// The dotted form of an OID, as x509-parser prints it.
pub(crate) fn oid_string(arcs: &[u64]) -> String {
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Parses the .3.6 body: SEQUENCE of UTF8String topic, each followed by SEQUENCE { UTF8String kind }.
pub(crate) fn parse_topics(body: &[u8]) -> Option<Vec<(String, String)>> {
    let (tag, mut items, rest) = read_tlv(body)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut out: Vec<(String, String)> = Vec::new();
    while !items.is_empty() {
        let (tag, content, rest) = read_tlv(items)?;
        items = rest;
        match tag {
            0x0c => out.push((
                std::str::from_utf8(content).ok()?.to_string(),
                String::new(),
            )),
            0x30 => {
                let (kind_tag, kind, _) = read_tlv(content)?;
                if kind_tag != 0x0c {
                    return None;
                }
                let kind = std::str::from_utf8(kind).ok()?.to_string();
                match out.last_mut() {
                    Some(last) if last.1.is_empty() => last.1 = kind,
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// One DER tag-length-value: (tag, content, rest). Bounded by the input; `None` when malformed.
pub(crate) fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = (rest.get(..n)?, rest.get(n..)?);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn topic_lists_round_trip(pairs in proptest::collection::vec(("[a-z.]{1,40}", "[a-z]{1,12}"), 0..20)) {
            let pairs: Vec<(String, String)> = pairs;
            prop_assert_eq!(parse_topics(&topics_extension(&pairs)), Some(pairs));
        }

        #[test]
        fn topic_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_topics(&bytes);
            let _ = read_tlv(&bytes);
        }

        #[test]
        fn long_topic_lists_use_long_lengths(n in 10usize..200) {
            let pairs: Vec<(String, String)> =
                (0..n).map(|i| (format!("com.example.app{i}"), "app".to_string())).collect();
            prop_assert_eq!(parse_topics(&topics_extension(&pairs)), Some(pairs));
        }
    }
}
